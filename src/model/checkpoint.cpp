// Checkpoint: one name -> tensor lookup over model.safetensors or the shards that
// model.safetensors.index.json lists. The index is cross-checked against the shards at open, so
// a later get() fails only for a tensor the checkpoint does not have at all.
#include <set>

#include "json_fields.h"
#include "model/model.h"

namespace tk {

namespace {

using json_fields::json;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

// Shard names come from a file we do not trust; they must stay inside the model directory.
bool is_safe_shard_name(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string::npos) slash = name.size();
    if (name.compare(start, slash - start, "..") == 0 && slash - start == 2) return false;
    start = slash + 1;
  }
  return true;
}

// weight_map of the index: tensor name -> shard file name.
Result<std::map<std::string, std::string>> read_weight_map(const std::string& index_path) {
  TK_ASSIGN_OR_RETURN(std::string text, read_text_file(index_path));
  TK_ASSIGN_OR_RETURN(json index, json_fields::parse_json(text, index_path));
  if (!index.is_object()) return corrupt(index_path + ": expected a JSON object, got " + index.type_name());
  auto it = index.find("weight_map");
  if (it == index.end() || !it->is_object()) return corrupt(index_path + ": weight_map missing or not an object");
  if (it->empty()) return corrupt(index_path + ": weight_map is empty");
  std::map<std::string, std::string> map;
  for (auto e = it->begin(); e != it->end(); ++e) {
    if (!e->is_string()) return corrupt(index_path + ": weight_map entry of '" + e.key() + "' is not a file name");
    std::string shard = e->get<std::string>();
    if (!is_safe_shard_name(shard))
      return corrupt(index_path + ": tensor '" + e.key() + "' maps to '" + shard + "', outside the model directory");
    map.emplace(e.key(), std::move(shard));
  }
  return map;
}

// What Checkpoint::open assembles: the open files and, per tensor name, its entry in one of them.
struct Opened {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, const TensorInfo*> index;
};

Result<Opened> open_single(const std::string& path) {
  Opened out;
  TK_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(path));
  for (const auto& [name, info] : file->tensors()) out.index.emplace(name, &info);
  out.files.push_back(std::move(file));
  return out;
}

// Opens every shard the index names once, then checks each indexed tensor is where it says.
Result<Opened> open_sharded(const std::string& model_dir, const std::string& index_path) {
  std::map<std::string, std::string> weight_map;
  try {  // NOTE: the boundary for nlohmann: no exception escapes, whatever the index holds.
    TK_ASSIGN_OR_RETURN(weight_map, read_weight_map(index_path));
  } catch (const std::exception& e) {
    return corrupt(index_path + ": " + e.what());
  }
  Opened out;
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [tensor, shard] : weight_map) {
    if (shards.count(shard) != 0) continue;
    const std::string path = join_path(model_dir, shard);
    if (!file_exists(path))
      return not_found(index_path + ": shard '" + shard + "' (holding tensor '" + tensor + "') does not exist");
    TK_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(path));
    shards.emplace(shard, file.get());
    out.files.push_back(std::move(file));
  }
  for (const auto& [tensor, shard] : weight_map) {
    const SafetensorsFile* file = shards.at(shard);
    auto it = file->tensors().find(tensor);
    if (it == file->tensors().end())
      return not_found(file->path() + ": tensor '" + tensor + "', listed in " + kIndexFile + ", is not in this shard");
    out.index.emplace(tensor, &it->second);
  }
  return out;
}

}  // namespace

// Like transformers, a single model.safetensors wins over an index when both are present.
Result<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::string& model_dir) {
  const std::string single_path = join_path(model_dir, kSingleFile);
  const std::string index_path = join_path(model_dir, kIndexFile);
  Result<Opened> opened =
      not_found(model_dir + ": no " + kSingleFile + " or " + kIndexFile + " in the model directory");
  if (file_exists(single_path)) {
    opened = open_single(single_path);
  } else if (file_exists(index_path)) {
    opened = open_sharded(model_dir, index_path);
  }
  if (!opened.ok()) return opened.status();
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->files_ = std::move(opened->files);
  ckpt->index_ = std::move(opened->index);
  return ckpt;
}

Result<TensorInfo> Checkpoint::get(const std::string& name, const Shape& expected) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    // Name the file a user would look in: the single file, or the index beside the shards.
    std::string where = "checkpoint";
    if (files_.size() == 1) {
      where = files_[0]->path();
    } else if (!files_.empty()) {
      const std::string& p = files_[0]->path();
      size_t slash = p.rfind('/');
      where = slash == std::string::npos ? kIndexFile : p.substr(0, slash + 1) + kIndexFile;
    }
    return not_found(where + ": tensor '" + name + "' not found");
  }
  const TensorInfo& info = *it->second;
  if (expected.rank > 0 && !(info.shape == expected))
    return corrupt(info.file + ": tensor '" + name + "' has shape " + info.shape.to_string() + " but the config needs " +
                   expected.to_string());
  return info;
}

bool Checkpoint::contains(const std::string& name) const { return index_.count(name) != 0; }

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, info] : index_) out.push_back(name);
  return out;
}

size_t Checkpoint::total_bytes() const {
  size_t total = 0;
  for (const auto& [name, info] : index_) total += info->nbytes;
  return total;
}

}  // namespace tk
