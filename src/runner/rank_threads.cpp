// The worker threads of tensor-parallel ranks: one per rank past the first, started once and
// bound to its rank's backend (its device, its OpenMP thread count), each waiting for the next
// call of run(). Rank 0 runs on the caller's thread (the engine thread), so N = 1 has no thread.
// NOTE: an exception must not leave a rank's thread: the others would wait for it forever in
// their next all-reduce (and a worker's would end the process). It becomes that rank's Status.
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include "runner/runner.h"

namespace tk {

struct RankThreads::State {
  // fn(rank), an exception turned into an error after on_exception ran.
  Status call(const std::function<Status(int)>& fn, int rank) {
    std::string what;
    try {
      return fn(rank);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "an exception that is not a std::exception";
    }
    Status error = internal_error("tensor-parallel rank " + std::to_string(rank) + " threw: " + what);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (cause.ok()) cause = error;
    }
    if (on_exception) on_exception();
    return error;
  }

  std::function<void()> on_exception;
  std::mutex mu;
  Status cause;  // the current call's first exception: what run() returns (the others' errors follow from it)
  std::condition_variable work, done;
  const std::function<Status(int)>* fn = nullptr;  // the current call's, while pending > 0
  uint64_t generation = 0;                         // one per run()
  int pending = 0;                                 // workers still in the current call
  bool stop = false;
  std::vector<Status> results;  // [size]: the current call's, by rank
  std::vector<std::thread> threads;

  void work_loop(int rank, Backend* backend) {
    backend->bind_to_current_thread();
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      work.wait(lock, [&] { return stop || generation != seen; });
      if (stop) return;
      seen = generation;
      const std::function<Status(int)>* f = fn;
      lock.unlock();
      Status s = call(*f, rank);
      lock.lock();
      results[rank] = std::move(s);
      if (--pending == 0) done.notify_one();
    }
  }
};

RankThreads::RankThreads(std::vector<Backend*> backends, std::function<void()> on_exception)
    : state_(std::make_unique<State>()) {
  state_->on_exception = std::move(on_exception);
  state_->results.resize(backends.size() + 1);
  for (size_t i = 0; i < backends.size(); ++i)
    state_->threads.emplace_back([s = state_.get(), rank = static_cast<int>(i + 1), b = backends[i]] { s->work_loop(rank, b); });
}

RankThreads::~RankThreads() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
  }
  state_->work.notify_all();
  for (std::thread& t : state_->threads) t.join();
}

Status RankThreads::run(const std::function<Status(int rank)>& fn) {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    TK_CHECK(s.pending == 0);
    s.fn = &fn;
    s.pending = static_cast<int>(s.threads.size());
    ++s.generation;
  }
  s.work.notify_all();
  s.results[0] = s.call(fn, 0);
  std::unique_lock<std::mutex> lock(s.mu);
  s.done.wait(lock, [&] { return s.pending == 0; });
  s.fn = nullptr;
  Status first = std::exchange(s.cause, Status::ok_status());
  for (Status& r : s.results) {
    if (!r.ok() && first.ok()) first = r;
    r = Status::ok_status();
  }
  return first;
}

}  // namespace tk
