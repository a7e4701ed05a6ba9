// GrammarCache and make_grammar (see grammar.h). One mutex guards the map and the LRU list; the
// compile itself runs outside it, and other threads asking for the same key wait on its entry.
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <deque>

#include "compiled.h"

namespace tk::grammar {

Result<Grammar> make_grammar(const GrammarSpec& spec) {
  using Kind = GrammarSpec::Kind;
  switch (spec.kind) {
    case Kind::kGbnf: return parse_gbnf(spec.text, spec.root_rule, spec.json.limits);
    case Kind::kRegex: return regex_to_grammar(spec.text, spec.json.limits);
    case Kind::kJsonSchema: return json_schema_to_grammar(spec.text, spec.json);
    case Kind::kJsonObject: return json_object_grammar(spec.json);
    case Kind::kJsonValue: return json_value_grammar(spec.json);
    case Kind::kChoice: return choice_grammar(spec.choices, spec.json.limits);
  }
  return invalid_argument("grammar: unknown kind");
}

namespace {

void put(std::string& key, std::string_view s) {
  key += std::to_string(s.size());
  key += ':';
  key += s;
}
void put(std::string& key, int64_t v) {
  key += std::to_string(v);
  key += ',';
}

// Everything that changes the compiled grammar, length-prefixed so that no two specs collide.
std::string cache_key(const GrammarSpec& spec) {
  std::string key;
  put(key, static_cast<int64_t>(spec.kind));
  const JsonSchemaOptions& j = spec.json;
  for (int64_t v : {int64_t{j.compact}, int64_t{j.max_indent}, int64_t{j.strict}, int64_t{j.max_integer_digits},
                    int64_t{j.max_fraction_digits}, int64_t{j.max_exponent_digits}, int64_t{j.max_fraction_seconds}}) {
    put(key, v);
  }
  const Limits& l = j.limits;
  for (int64_t v : {static_cast<int64_t>(l.max_input_bytes), int64_t{l.max_nesting}, int64_t{l.max_rules}, l.max_repeat,
                    static_cast<int64_t>(l.max_fsm_nodes), int64_t{l.max_stack_depth}, int64_t{l.max_parallel_parses}}) {
    put(key, v);
  }
  put(key, spec.root_rule);
  put(key, static_cast<int64_t>(spec.choices.size()));
  for (const std::string& c : spec.choices) put(key, c);
  put(key, spec.text);
  return key;
}

}  // namespace

struct GrammarCache::State {
  struct Entry {
    bool ready = false;
    Result<std::shared_ptr<const CompiledGrammar>> result = invalid_argument("grammar: still compiling");
    std::list<std::string>::iterator lru;
  };

  std::shared_ptr<const Vocabulary> vocab;
  Options options;
  std::mutex mu;
  std::condition_variable ready_cv, work_cv;
  std::list<std::string> lru;  // front: most recently used
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries;
  std::deque<std::weak_ptr<const CompiledGrammar>> queue;  // grammars whose tables are still to fill
  Stats stats;
  std::atomic<bool> stop{false};
  std::thread worker;

  int64_t table_bytes_locked() const {
    int64_t total = 0;
    for (const auto& [key, e] : entries) {
      if (e->ready && e->result.ok()) total += e->result.value()->stats().table_bytes;
    }
    return total;
  }

  void evict_locked() {
    auto drop_oldest = [&] {
      entries.erase(lru.back());  // waiters hold their own reference to the entry
      lru.pop_back();
      ++stats.evictions;
    };
    while (entries.size() > options.max_entries && !lru.empty()) drop_oldest();
    // The newest entry (front) stays whatever its size: it is the one being asked for.
    while (lru.size() > 1 && table_bytes_locked() > options.max_table_bytes) drop_oldest();
  }

  void work() {
    for (;;) {
      std::shared_ptr<const CompiledGrammar> g;
      {
        std::unique_lock lock(mu);
        work_cv.wait(lock, [&] { return stop.load() || !queue.empty(); });
        if (stop.load()) return;
        g = queue.front().lock();  // null if it was evicted and every matcher is gone
        queue.pop_front();
      }
      if (g) g->precompute_tables(&stop, options.background_threads);
    }
  }
};

GrammarCache::GrammarCache(std::shared_ptr<const Vocabulary> vocab) : GrammarCache(std::move(vocab), Options()) {}

GrammarCache::GrammarCache(std::shared_ptr<const Vocabulary> vocab, Options options)
    : state_(std::make_unique<State>()) {
  state_->vocab = std::move(vocab);
  state_->options = options;
  state_->options.max_entries = std::max<size_t>(1, options.max_entries);
  if (options.background_tables) state_->worker = std::thread([s = state_.get()] { s->work(); });
}

GrammarCache::~GrammarCache() {
  {
    std::lock_guard lock(state_->mu);
    state_->stop = true;
  }
  state_->work_cv.notify_all();
  if (state_->worker.joinable()) state_->worker.join();
}

Result<std::shared_ptr<const CompiledGrammar>> GrammarCache::get(const GrammarSpec& spec) {
  State& s = *state_;
  std::string key = cache_key(spec);
  std::shared_ptr<State::Entry> entry;
  {
    std::unique_lock lock(s.mu);
    auto it = s.entries.find(key);
    if (it != s.entries.end()) {
      entry = it->second;
      s.lru.splice(s.lru.begin(), s.lru, entry->lru);
      ++s.stats.hits;
      s.ready_cv.wait(lock, [&] { return entry->ready; });
      return entry->result;
    }
    entry = std::make_shared<State::Entry>();
    s.lru.push_front(key);
    entry->lru = s.lru.begin();
    s.entries.emplace(key, entry);
    ++s.stats.misses;
    s.evict_locked();
  }
  Result<std::shared_ptr<const CompiledGrammar>> result = invalid_argument("grammar: not compiled");
  Result<Grammar> grammar = make_grammar(spec);
  if (grammar.ok()) {
    CompileOptions copt = s.options.compile;
    copt.limits = spec.json.limits;
    result = CompiledGrammar::compile(grammar.value(), s.vocab, copt);
  } else {
    result = grammar.status();
  }
  {
    std::lock_guard lock(s.mu);
    entry->result = result;
    entry->ready = true;
    auto it = s.entries.find(key);
    if (!result.ok() && it != s.entries.end() && it->second == entry) {  // errors are not kept
      s.lru.erase(entry->lru);
      s.entries.erase(it);
    }
    if (result.ok() && s.options.background_tables && !s.options.compile.precompute) s.queue.push_back(result.value());
  }
  s.ready_cv.notify_all();
  s.work_cv.notify_one();
  return result;
}

GrammarCache::Stats GrammarCache::stats() const {
  std::lock_guard lock(state_->mu);
  Stats out = state_->stats;
  out.entries = static_cast<int64_t>(state_->entries.size());
  out.table_bytes = state_->table_bytes_locked();
  return out;
}

}  // namespace tk::grammar
