// Checked inputs and outputs of the commands (see output.h).
#include "output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

namespace tk::cli {
namespace {

Status io_failure(const std::string& name, const std::string& what, int error) {
  return io_error(name + ": " + what + ": " + std::strerror(error));
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Status write_stdout(std::string_view data, bool flush) {
  errno = 0;
  if ((!data.empty() && std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) ||
      (flush && std::fflush(stdout) != 0) || std::ferror(stdout))
    return io_failure("stdout", "write failed", errno ? errno : EIO);
  return Status::ok_status();
}

Status close_stdout() {
  errno = 0;
  std::cout.flush();
  const bool failed = std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout;
  const int error = errno ? errno : EIO;
  // NOTE: a closed stdout (EBADF) fails here too; close it now so that exit() has nothing left.
  const bool close_failed = std::fclose(stdout) != 0 && errno != EBADF;
  if (failed || close_failed) return io_failure("stdout", "write failed", failed ? error : errno);
  return Status::ok_status();
}

Result<std::unique_ptr<OutputFile>> OutputFile::open(const std::string& path, const std::string& flag) {
  std::unique_ptr<OutputFile> out(new OutputFile());
  out->path_ = path;
  if (path.empty()) return invalid_argument(flag + ": an empty file name");
  if (path == "-") {
    out->file_ = stdout;
    return out;
  }
  const std::string name = flag + " " + path;
  struct stat st {};
  out->target_ = path;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return invalid_argument(name + ": is a directory, not a file");
    if (!S_ISREG(st.st_mode)) {  // a device, a pipe: written in place
      out->file_ = std::fopen(path.c_str(), "w");
      if (!out->file_) return io_failure(name, "cannot write", errno);
      return out;
    }
    if (::access(path.c_str(), W_OK) != 0) return io_failure(name, "cannot write", errno);
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved)) out->target_ = resolved;  // replace a symlink's target, not the link
  }
  const std::string dir = directory_of(out->target_), base = out->target_.substr(out->target_.find_last_of('/') + 1);
  for (int attempt = 0; attempt < 100 && !out->file_; ++attempt) {
    const std::string tmp = dir + "/." + base + ".tmp" + std::to_string(::getpid()) + "-" + std::to_string(attempt);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return io_failure(name, "cannot write in " + dir, errno);
    }
    out->file_ = ::fdopen(fd, "w");
    if (!out->file_) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return io_failure(name, "cannot write", errno);
    }
    out->temporary_ = tmp;
  }
  if (!out->file_) return io_error(name + ": cannot make a temporary file in " + dir);
  return out;
}

OutputFile::~OutputFile() {
  if (file_ && file_ != stdout) std::fclose(file_);
  if (!committed_ && !temporary_.empty()) ::unlink(temporary_.c_str());
}

Status OutputFile::failed(const std::string& what, int error) const {
  return io_failure(path_ == "-" ? "stdout" : path_, what, error ? error : EIO);
}

Status OutputFile::write(std::string_view data) {
  errno = 0;
  if (!file_ || std::fwrite(data.data(), 1, data.size(), file_) != data.size() || std::ferror(file_))
    return failed("write failed", errno);
  return Status::ok_status();
}

Status OutputFile::commit() {
  if (!file_) return failed("write failed", EBADF);
  errno = 0;
  if (file_ == stdout) {
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) return failed("write failed", errno);
    committed_ = true;
    return Status::ok_status();
  }
  const bool flushed = std::fflush(file_) == 0 && !std::ferror(file_) && (temporary_.empty() || ::fsync(fileno(file_)) == 0);
  const int error = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) return failed("write failed", flushed ? errno : error);
  if (!temporary_.empty() && ::rename(temporary_.c_str(), target_.c_str()) != 0) return failed("cannot replace", errno);
  committed_ = true;
  return Status::ok_status();
}

Result<std::string> read_input(const std::string& path) {
  if (path != "-") return read_text_file(path);
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  if (std::cin.bad()) return io_error("stdin: read failed");
  return ss.str();
}

std::optional<size_t> invalid_utf8_offset(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0, min = 0;
    if (b < 0x80) n = 1, cp = b;
    else if ((b & 0xE0) == 0xC0) n = 2, cp = b & 0x1F, min = 0x80;
    else if ((b & 0xF0) == 0xE0) n = 3, cp = b & 0x0F, min = 0x800;
    else if ((b & 0xF8) == 0xF0) n = 4, cp = b & 0x07, min = 0x10000;
    else return i;
    if (i + n > s.size()) return i;
    for (int k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i;
      cp = cp << 6 | (c & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;  // overlong, too large, surrogate
    i += n;
  }
  return std::nullopt;
}

Status check_utf8(std::string_view text, const std::string& where) {
  if (auto at = invalid_utf8_offset(text)) return invalid_argument(where + ": invalid UTF-8 at byte " + std::to_string(*at));
  return Status::ok_status();
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace tk::cli
