// Output processing: stop strings over streamed text. Text that could still grow into a stop
// string is held back, so a stop string is never emitted, not even in part.
#include "engine/engine.h"

namespace tk {

// Length of the longest suffix of `text` that is a proper prefix of `stop`.
static size_t partial_stop_suffix(const std::string& text, const std::string& stop) {
  for (size_t k = std::min(stop.size() - 1, text.size()); k > 0; --k)
    if (text.compare(text.size() - k, k, stop, 0, k) == 0) return k;
  return 0;
}

std::string release_text(std::string& pending, const std::vector<std::string>& stop, bool final, bool* stopped) {
  *stopped = false;
  size_t first = std::string::npos;
  for (const std::string& s : stop) first = std::min(first, pending.find(s));
  if (first != std::string::npos) {
    std::string out = pending.substr(0, first);
    pending.clear();
    *stopped = true;
    return out;
  }
  size_t hold = 0;
  if (!final)
    for (const std::string& s : stop) hold = std::max(hold, partial_stop_suffix(pending, s));
  std::string out = pending.substr(0, pending.size() - hold);
  pending.erase(0, out.size());
  return out;
}

}  // namespace tk
