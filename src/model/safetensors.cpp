// safetensors reader. A checkpoint is untrusted input: before any tensor is handed out, the
// header is checked the way the reference implementation (huggingface/safetensors, Metadata::
// validate) checks it — offsets sorted start at 0, are contiguous and end exactly at the end of
// the file; each tensor's byte range matches dtype x shape without overflow — so that a pointer
// in a TensorInfo always lies inside the mapping.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
//   {name: {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}
// then the data buffer; offsets are relative to the start of the buffer.
#include <algorithm>
#include <set>

#include "json_fields.h"
#include "model/model.h"

namespace tk {

namespace {

using json_fields::json;

// The reference implementation's limit; real headers are a few hundred KiB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Dtypes the format defines that tokamak has no DType for: a valid file, an unsupported one.
constexpr const char* kOtherSafetensorsDtypes[] = {"F8_E5M2", "U16", "U32", "U64",
                                                   "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};

struct Entry {
  std::string name;
  std::string dtype_text;  // as written, for messages
  DType dtype = DType::kF32;
  Shape shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

std::string range_text(uint64_t begin, uint64_t end) {
  // Appended piecewise: GCC 12 warns falsely (-Wrestrict, bug 105329) on "[" + std::string.
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  s += ")";
  return s;
}

std::optional<uint64_t> as_offset(const json& v) {
  std::optional<int64_t> i = json_fields::as_int64(v);
  if (!i || *i < 0) return std::nullopt;
  return static_cast<uint64_t>(*i);
}

Status parse_dtype(const json& obj, const std::string& where, Entry& e) {
  auto it = obj.find("dtype");
  if (it == obj.end() || !it->is_string()) return corrupt(where + ": dtype missing or not a string");
  e.dtype_text = it->get<std::string>();
  if (std::optional<DType> d = dtype_from_safetensors(e.dtype_text)) {
    e.dtype = *d;
    return Status::ok_status();
  }
  for (const char* other : kOtherSafetensorsDtypes)
    if (e.dtype_text == other) return unsupported(where + ": dtype " + e.dtype_text + " is not supported");
  return corrupt(where + ": unknown dtype '" + json_fields::brief(*it) + "'");
}

Status parse_shape(const json& obj, const std::string& where, Entry& e) {
  auto it = obj.find("shape");
  if (it == obj.end() || !it->is_array()) return corrupt(where + ": shape missing or not a list");
  if (it->size() > static_cast<size_t>(kMaxDims))
    return unsupported(where + ": rank " + std::to_string(it->size()) + " > " + std::to_string(kMaxDims));
  for (const json& d : *it) {
    std::optional<int64_t> dim = json_fields::as_int64(d);
    if (!dim || *dim < 0) return corrupt(where + ": shape " + json_fields::brief(*it) + " is not a list of sizes");
    e.shape.dims[e.shape.rank++] = *dim;
  }
  return Status::ok_status();
}

Status parse_entry(const json& v, const std::string& where, Entry& e) {
  if (!v.is_object()) return corrupt(where + ": expected an object, got " + v.type_name());
  TK_RETURN_IF_ERROR(parse_dtype(v, where, e));
  TK_RETURN_IF_ERROR(parse_shape(v, where, e));
  auto it = v.find("data_offsets");
  if (it == v.end() || !it->is_array() || it->size() != 2)
    return corrupt(where + ": data_offsets missing or not a [begin, end] pair");
  std::optional<uint64_t> begin = as_offset((*it)[0]), end = as_offset((*it)[1]);
  if (!begin || !end) return corrupt(where + ": data_offsets " + json_fields::brief(*it) + " are not byte offsets");
  e.begin = *begin;
  e.end = *end;
  return Status::ok_status();
}

// One tensor on its own: a well-formed range inside the buffer that holds exactly its bytes.
Status check_entry(const Entry& e, const std::string& where, uint64_t data_size) {
  if (e.begin > e.end) return corrupt(where + ": data_offsets " + range_text(e.begin, e.end) + " have begin > end");
  if (e.end > data_size)
    return corrupt(where + ": data_offsets " + range_text(e.begin, e.end) + " run past the end of the " +
                   std::to_string(data_size) + "-byte data buffer (truncated file?)");
  int64_t numel = 1;
  for (int i = 0; i < e.shape.rank; ++i)
    if (__builtin_mul_overflow(numel, e.shape.dims[i], &numel))
      return corrupt(where + ": shape " + e.shape.to_string() + " overflows int64");
  uint64_t need = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel), dtype_size(e.dtype), &need))
    return corrupt(where + ": " + e.dtype_text + " " + e.shape.to_string() + " overflows the byte count");
  if (e.end - e.begin != need)
    return corrupt(where + ": data_offsets " + range_text(e.begin, e.end) + " hold " +
                   std::to_string(e.end - e.begin) + " bytes but " + e.dtype_text + " " + e.shape.to_string() +
                   " needs " + std::to_string(need));
  return Status::ok_status();
}

// All tensors together tile the buffer: sorted by offset, no gap, no overlap, nothing after.
Status check_layout(std::vector<Entry>& entries, const std::string& path, uint64_t data_size) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin > covered)
      return corrupt(path + ": gap: data bytes " + range_text(covered, e.begin) + " before tensor '" + e.name +
                     "' belong to no tensor");
    if (e.begin < covered)
      return corrupt(path + ": tensor '" + e.name + "' data_offsets " + range_text(e.begin, e.end) +
                     " overlap tensor '" + prev->name + "' " + range_text(prev->begin, prev->end));
    covered = e.end;
    prev = &e;
  }
  if (covered != data_size)
    return corrupt(path + ": the tensors end at byte " + std::to_string(covered) + " of a " +
                   std::to_string(data_size) + "-byte data buffer (" + std::to_string(data_size - covered) +
                   " trailing bytes)");
  return Status::ok_status();
}

Status check_metadata(const json& v, const std::string& path) {
  if (!v.is_object()) return corrupt(path + ": __metadata__ must be an object, got " + v.type_name());
  for (auto it = v.begin(); it != v.end(); ++it)
    if (!it->is_string()) return corrupt(path + ": __metadata__ value of '" + it.key() + "' is not a string");
  return Status::ok_status();
}

// Parses the JSON header; nlohmann keeps the last of duplicate keys silently, so the parser
// callback records them and a duplicate tensor name is an error.
Result<json> parse_header(const char* text, size_t size, const std::string& path) {
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      if (!seen.insert(parsed.get_ref<const std::string&>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, text + size, on_event);
  } catch (const json::exception& e) {
    return corrupt(path + ": malformed JSON header: " + e.what());
  }
  if (!duplicate.empty()) return corrupt(path + ": tensor '" + duplicate + "' is listed twice in the header");
  if (!header.is_object()) return corrupt(path + ": the header is a JSON " + header.type_name() + ", not an object");
  return header;
}

}  // namespace

struct SafetensorsParser {
  static Status parse(SafetensorsFile& f);
};

Status SafetensorsParser::parse(SafetensorsFile& f) {
  const std::string& path = f.path_;
  const uint64_t size = f.file_->size();
  const uint8_t* bytes = f.file_->data();
  if (size < 8) return corrupt(path + ": file is " + std::to_string(size) + " bytes, too short for a safetensors header");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > size - 8)
    return corrupt(path + ": header length " + std::to_string(n) + " runs past the end of the " +
                   std::to_string(size) + "-byte file");
  if (n > kMaxHeaderBytes) return corrupt(path + ": header length " + std::to_string(n) + " exceeds the 100 MB limit");
  TK_ASSIGN_OR_RETURN(json header, parse_header(reinterpret_cast<const char*>(bytes + 8), n, path));

  const uint64_t data_size = size - 8 - n;
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      TK_RETURN_IF_ERROR(check_metadata(it.value(), path));
      continue;
    }
    Entry e;
    e.name = it.key();
    const std::string where = path + ": tensor '" + e.name + "'";
    TK_RETURN_IF_ERROR(parse_entry(it.value(), where, e));
    TK_RETURN_IF_ERROR(check_entry(e, where, data_size));
    entries.push_back(std::move(e));
  }
  TK_RETURN_IF_ERROR(check_layout(entries, path, data_size));

  const uint8_t* data = bytes + 8 + n;
  for (const Entry& e : entries) {
    TensorInfo info;
    info.name = e.name;
    info.dtype = e.dtype;
    info.shape = e.shape;
    info.data = data + e.begin;
    info.nbytes = static_cast<size_t>(e.end - e.begin);
    info.file = path;
    f.tensors_.emplace(e.name, std::move(info));
  }
  return Status::ok_status();
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  if (!file_exists(path)) return not_found(path + ": no such file");
  auto f = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  f->path_ = path;
  TK_ASSIGN_OR_RETURN(f->file_, MappedFile::open(path));
  // NOTE: the boundary for nlohmann: every access above is type-checked first; this catch keeps
  // a missed case an error value instead of an escaping exception.
  try {
    TK_RETURN_IF_ERROR(SafetensorsParser::parse(*f));
  } catch (const std::exception& e) {
    return corrupt(path + ": " + e.what());
  }
  return f;
}

size_t SafetensorsFile::size() const { return file_ ? file_->size() : 0; }

}  // namespace tk
