// The engine for its users: loads the model, builds the core (KV cache, graphs), starts the loop.
#include "engine/engine.h"

namespace tk {

Result<std::unique_ptr<Engine>> Engine::create(const EngineConfig& config, const LoadProgress& progress) {
  TK_ASSIGN_OR_RETURN(LoadedModel model, load_model(config, progress));
  std::string backend_name = model.backend->name();
  TK_ASSIGN_OR_RETURN(std::unique_ptr<EngineCore> core, EngineCore::create(config, std::move(model)));
  std::unique_ptr<Engine> engine(new Engine());
  engine->backend_name_ = std::move(backend_name);
  engine->loop_ = std::make_unique<EngineLoop>(std::move(core));
  return engine;
}

Engine::~Engine() {
  if (loop_) loop_->shutdown();
}

std::string Engine::backend_name() const { return backend_name_; }

SamplingParams Engine::default_sampling_params() const {
  const GenerationConfig& g = generation_config();
  SamplingParams p;
  if (g.temperature) p.temperature = *g.temperature;
  if (g.top_p) p.top_p = *g.top_p;
  if (g.top_k) p.top_k = *g.top_k;
  if (g.min_p) p.min_p = *g.min_p;
  if (g.repetition_penalty) p.repetition_penalty = *g.repetition_penalty;
  if (g.do_sample && !*g.do_sample) p.temperature = 0.f;
  return p;
}

}  // namespace tk
