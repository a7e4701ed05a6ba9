// Inputs and outputs of the commands, none of them lost silently: every write to stdout or a file
// and the final flush and close are checked (a full disk, /dev/full, a closed stdout give an error
// naming the file); a regular output file is written under a temporary name beside it and renamed
// over it only when complete, so a failed run leaves the old file (or none), never half of one.
// "-" names stdin or stdout.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/core.h"

namespace tk::cli {

// Writes to stdout (and flushes when asked); the error names stdout.
Status write_stdout(std::string_view data, bool flush = false);
// Flushes and closes stdout: the last chance to see a write that failed.
Status close_stdout();

class OutputFile {
 public:
  // `flag` names the option in errors ("--output"). Fails now (not after the work) when the file
  // cannot be written: a directory, a missing or read-only folder.
  static Result<std::unique_ptr<OutputFile>> open(const std::string& path, const std::string& flag);
  ~OutputFile();  // removes the temporary file of an output that was not committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  Status write(std::string_view data);
  // Flushes, closes and renames the temporary file over the output.
  Status commit();
  const std::string& path() const { return path_; }

 private:
  OutputFile() = default;
  Status failed(const std::string& what, int error) const;
  std::string path_;       // as given
  std::string target_;     // what is replaced (a symlink's target)
  std::string temporary_;  // "" when writing in place (stdout, a device, a pipe)
  FILE* file_ = nullptr;
  bool committed_ = false;
};

// A whole text file, or stdin for "-"; errors name `what` ("--prompt-file x.txt").
Result<std::string> read_input(const std::string& path);

// The offset of the first byte that is not part of valid UTF-8, if any.
std::optional<size_t> invalid_utf8_offset(std::string_view text);
// invalid_argument("<where>: invalid UTF-8 at byte N") when `text` is not UTF-8.
Status check_utf8(std::string_view text, const std::string& where);

// The same file (device and inode) for two existing paths.
bool same_file(const std::string& a, const std::string& b);

}  // namespace tk::cli
