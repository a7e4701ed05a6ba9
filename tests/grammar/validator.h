// A small JSON Schema validator for the keywords the grammar engine supports, so that the tests
// can check in C++ that generated outputs validate (Python's jsonschema checks the corpus itself:
// data/make_corpus.py).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace tk::grammar::testing {

using OJson = nlohmann::ordered_json;

// Empty when `instance` validates against `schema`; otherwise the first failure and where.
std::string validate_instance(const OJson& schema, const OJson& instance);

}  // namespace tk::grammar::testing
