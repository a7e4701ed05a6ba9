// The urlize filter: links for http(s)://, www. and e-mail addresses in text (jinja2.utils.urlize,
// with its leading/trailing punctuation rules; rel="noopener" as Jinja's default policy).
#include <cctype>

#include "filters.h"
#include "pystr.h"

namespace tk::jinja::detail {

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool looks_like_email(const std::string& s) {
  size_t at = s.find('@');
  if (at == std::string::npos || at == 0 || s.find('@', at + 1) != std::string::npos) return false;
  std::string domain = s.substr(at + 1);
  return domain.find('.') != std::string::npos && domain.front() != '.' && domain.back() != '.' &&
         s.find(':') == std::string::npos;
}

std::string link_word(std::string word, const std::string& attrs, int64_t trim_limit) {
  std::string head, tail;
  while (starts_with(word, "(") || starts_with(word, "<") || starts_with(word, "&lt;")) {
    size_t n = starts_with(word, "&lt;") ? 4 : 1;
    head += word.substr(0, n);
    word = word.substr(n);
  }
  auto ends = [&](const char* s) {
    std::string x(s);
    return word.size() >= x.size() && word.compare(word.size() - x.size(), x.size(), x) == 0;
  };
  while (!word.empty() && (ends(")") || ends(">") || ends(".") || ends(",") || ends("\n") || ends("&gt;"))) {
    size_t n = ends("&gt;") ? 4 : 1;
    tail = word.substr(word.size() - n) + tail;
    word.resize(word.size() - n);
  }
  auto shown = [&](const std::string& url) {
    if (trim_limit >= 0 && static_cast<int64_t>(url.size()) > trim_limit) return url.substr(0, static_cast<size_t>(trim_limit)) + "...";
    return url;
  };
  std::string middle = word;
  if (starts_with(word, "http://") || starts_with(word, "https://")) {
    middle = "<a href=\"" + word + "\"" + attrs + ">" + shown(word) + "</a>";
  } else if (starts_with(word, "www.") && word.size() > 4) {
    middle = "<a href=\"https://" + word + "\"" + attrs + ">" + shown(word) + "</a>";
  } else if (starts_with(word, "mailto:") && looks_like_email(word.substr(7))) {
    middle = "<a href=\"" + word + "\">" + word.substr(7) + "</a>";
  } else if (looks_like_email(word)) {
    middle = "<a href=\"mailto:" + word + "\">" + word + "</a>";
  }
  return head + middle + tail;
}

}  // namespace

Value f_urlize(Interpreter&, const Value& v, CallArgs& c) {
  Args a("urlize", c, {"trim_url_limit", "nofollow", "target", "rel", "extra_schemes"});
  const int64_t trim_limit = a.has(0) && !a.get(0).is_none() ? a.get_int(0, -1) : -1;
  std::string rel = a.has(3) && !a.get(3).is_none() ? to_str(a.get(3)) : "noopener";
  if (a.get_bool(1, false)) rel = rel.empty() ? "nofollow" : rel + " nofollow";
  std::string attrs = rel.empty() ? "" : " rel=\"" + html_escape(rel) + "\"";
  if (a.has(2) && !a.get(2).is_none()) attrs += " target=\"" + html_escape(to_str(a.get(2))) + "\"";
  const std::string escaped = html_escape(to_str(v));
  std::string out, word;
  for (size_t i = 0; i <= escaped.size(); ++i) {
    const bool space = i < escaped.size() && std::isspace(static_cast<unsigned char>(escaped[i]));
    if (i == escaped.size() || space) {
      out += link_word(word, attrs, trim_limit);
      word.clear();
      if (space) out += escaped[i];
    } else {
      word += escaped[i];
    }
  }
  return Value::string(std::move(out));
}

}  // namespace tk::jinja::detail
