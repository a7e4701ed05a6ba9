// Reading config.json's quantization_config. Private to src/model.
#pragma once

#include "json_fields.h"
#include "model/model.h"

namespace tk::model_detail {

// Parses quantization_config or compression_config of config.json (`j`: the whole object) into
// `out`; an error names the field of a method, format or strategy tokamak does not run.
Status parse_quantization_config(const json_fields::json& j, const std::string& source, QuantizationConfig& out);

}  // namespace tk::model_detail
