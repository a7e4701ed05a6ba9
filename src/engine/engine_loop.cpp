// The engine thread: drains the inbox (adds, aborts), steps the core while there is work, hands
// each output to its request's stream, and sleeps on the inbox while idle.
#include <algorithm>

#include "engine/engine.h"

namespace tk {
namespace engine_detail {

struct Command {
  enum class Kind { kAdd, kAbort } kind = Kind::kAdd;
  int64_t id = 0;
  int index = -1;  // abort: one sequence, or -1 for all
  std::vector<int32_t> prompt;
  SamplingParams params;
  std::shared_ptr<StreamState> stream;
};

struct Inbox {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Command> commands;
  bool stopping = false;  // shutdown() asked
  bool stopped = false;   // the thread is gone: commands are dropped
  void post(Command c) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (stopped) return;
      commands.push_back(std::move(c));
    }
    wake.notify_one();
  }
};

struct StreamState {
  explicit StreamState(int num_seqs) : remaining(num_seqs) {}
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<RequestOutput> queue;
  int remaining;  // sequences whose final output has not been queued
  std::function<void()> notify;
};

}  // namespace engine_detail

using engine_detail::Command;
using engine_detail::StreamState;

RequestStream::RequestStream(int64_t id, std::shared_ptr<StreamState> state, std::shared_ptr<engine_detail::Inbox> inbox)
    : id_(id), state_(std::move(state)), inbox_(std::move(inbox)) {}

RequestStream::~RequestStream() {
  if (!ended()) abort();
}

std::vector<RequestOutput> RequestStream::next() {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->ready.wait(lock, [&] { return !state_->queue.empty() || state_->remaining == 0; });
  std::vector<RequestOutput> out(std::make_move_iterator(state_->queue.begin()), std::make_move_iterator(state_->queue.end()));
  state_->queue.clear();
  return out;
}

std::vector<RequestOutput> RequestStream::poll() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  std::vector<RequestOutput> out(std::make_move_iterator(state_->queue.begin()), std::make_move_iterator(state_->queue.end()));
  state_->queue.clear();
  return out;
}

void RequestStream::set_notify(std::function<void()> notify) {
  bool pending;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->notify = std::move(notify);
    pending = !state_->queue.empty() || state_->remaining == 0;
  }
  if (pending && state_->notify) state_->notify();  // output that arrived before the callback
}

bool RequestStream::ended() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->remaining == 0 && state_->queue.empty();
}

void RequestStream::abort(int index) {
  Command c;
  c.kind = Command::Kind::kAbort, c.id = id_, c.index = index;
  inbox_->post(std::move(c));
}

EngineLoop::EngineLoop(std::unique_ptr<EngineCore> core)
    : core_(std::move(core)), inbox_(std::make_shared<engine_detail::Inbox>()) {
  stats_ = core_->stats();
  thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() { shutdown(); }

Result<std::shared_ptr<RequestStream>> EngineLoop::add(std::vector<int32_t> prompt, SamplingParams params) {
  std::vector<NewRequest> one;
  one.push_back({std::move(prompt), std::move(params)});
  TK_ASSIGN_OR_RETURN(auto streams, add_all(std::move(one)));
  return streams[0];
}

Result<std::vector<std::shared_ptr<RequestStream>>> EngineLoop::add_all(std::vector<NewRequest> requests) {
  for (const NewRequest& r : requests) TK_RETURN_IF_ERROR(core_->validate(r.prompt, r.params));
  std::vector<std::shared_ptr<RequestStream>> streams;
  {
    std::lock_guard<std::mutex> lock(inbox_->mutex);
    if (inbox_->stopping) return unsupported("the engine is shutting down");
    for (NewRequest& r : requests) {
      const int64_t id = next_id_++;
      const int n = r.params.n;
      auto state = std::make_shared<StreamState>(n);
      Command c;
      c.kind = Command::Kind::kAdd, c.id = id, c.prompt = std::move(r.prompt), c.params = std::move(r.params);
      c.stream = state;
      inbox_->commands.push_back(std::move(c));
      streams.push_back(std::make_shared<RequestStream>(id, state, inbox_));
    }
  }
  inbox_->wake.notify_one();
  return streams;
}

void EngineLoop::abort(int64_t request_id, int index) {
  Command c;
  c.kind = Command::Kind::kAbort, c.id = request_id, c.index = index;
  inbox_->post(std::move(c));
}

void EngineLoop::shutdown() {
  {
    std::lock_guard<std::mutex> lock(inbox_->mutex);
    inbox_->stopping = true;
  }
  inbox_->wake.notify_one();
  if (thread_.joinable()) thread_.join();
}

EngineStats EngineLoop::stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return stats_;
}

void EngineLoop::deliver(std::vector<RequestOutput>& outputs) {
  for (RequestOutput& o : outputs) {
    auto it = streams_.find(o.request_id);
    if (it == streams_.end()) continue;
    std::shared_ptr<StreamState> s = it->second;
    std::function<void()> notify;
    {
      std::lock_guard<std::mutex> lock(s->mutex);
      if (o.finished()) --s->remaining;
      s->queue.push_back(std::move(o));
      notify = s->notify;
      if (s->remaining == 0) streams_.erase(it);
    }
    s->ready.notify_all();
    if (notify) notify();
  }
  outputs.clear();
}

void EngineLoop::run() {
  core_->backend().bind_to_current_thread();
  std::vector<RequestOutput> outputs;
  for (;;) {
    std::deque<Command> commands;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(inbox_->mutex);
      inbox_->wake.wait(lock, [&] { return !inbox_->commands.empty() || inbox_->stopping || core_->has_work(); });
      commands.swap(inbox_->commands);
      stopping = inbox_->stopping;
      if (stopping) inbox_->stopped = true;
    }
    for (Command& c : commands) {
      if (c.kind == Command::Kind::kAdd) {
        streams_.emplace(c.id, c.stream);
        core_->add(c.id, std::move(c.prompt), std::move(c.params));
      } else {
        core_->abort(c.id, c.index, outputs);
      }
    }
    if (stopping) {
      core_->drain(outputs);  // the step still out: its sequences that ended report as ended
      std::vector<int64_t> ids;
      for (auto& [id, s] : streams_) ids.push_back(id);
      for (int64_t id : ids) core_->abort(id, -1, outputs);
    } else if (core_->has_work()) {
      std::vector<RequestOutput> step = core_->step();
      outputs.insert(outputs.end(), std::make_move_iterator(step.begin()), std::make_move_iterator(step.end()));
    }
    deliver(outputs);
    {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      stats_ = core_->stats();
    }
    if (stopping) return;
  }
}

}  // namespace tk
