#include <algorithm>

#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "anvil/optim/lr_scheduler.h"
#include "anvil/optim/reduce_lr_on_plateau.h"

namespace anvil::optim {

SequentialLR::SequentialLR(Optimizer& optimizer,
                           std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<int64_t> milestones, int64_t last_epoch)
    : LRScheduler(optimizer, NoInitialLr{}),
      schedulers_(std::move(schedulers)),
      milestones_(std::move(milestones)) {
  ANVIL_CHECK(!schedulers_.empty(), ValueError,
              "SequentialLR: expected at least one scheduler, got none");
  for (size_t i = 0; i < schedulers_.size(); ++i) {
    ANVIL_CHECK(schedulers_[i] != nullptr, ValueError, "SequentialLR: scheduler ", i, " is null");
    ANVIL_CHECK(!dynamic_cast<ReduceLROnPlateau*>(schedulers_[i].get()), ValueError,
                "SequentialLR: does not support ReduceLROnPlateau (its step needs a metric), got "
                "one at index ",
                i);
    ANVIL_CHECK(&schedulers_[i]->optimizer() == &optimizer, ValueError,
                "SequentialLR: expected all schedulers to drive the same optimizer, scheduler ", i,
                " drives another");
  }
  ANVIL_CHECK(milestones_.size() + 1 == schedulers_.size(), ValueError,
              "SequentialLR: expected one milestone fewer than schedulers, got ",
              schedulers_.size(), " schedulers and ", milestones_.size(), " milestones");
  last_epoch_ = last_epoch + 1;
  base_lrs_ = group_values("initial_lr");
  // Undo the schedulers' initial steps and start the first one again.
  for (auto& g : opt_.param_groups()) g.options["lr"] = g.options.at("initial_lr");
  for (auto& s : schedulers_) recursive_undo(*s);
  const size_t idx =
      size_t(std::upper_bound(milestones_.begin(), milestones_.end(), 0) - milestones_.begin());
  schedulers_[idx]->initial_step();
  last_lr_ = schedulers_[idx]->get_last_lr();
}

void SequentialLR::recursive_undo(LRScheduler& s) {
  if (auto* seq = dynamic_cast<SequentialLR*>(&s)) {
    for (auto& child : seq->schedulers_) recursive_undo(*child);
  } else {
    s.last_epoch_ -= 1;
  }
}

void SequentialLR::step() {
  last_epoch_ += 1;
  const size_t idx = size_t(std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) -
                            milestones_.begin());
  LRScheduler& s = *schedulers_[idx];
  if (idx > 0 && milestones_[idx - 1] == last_epoch_)
    s.update_lr(0);
  else
    s.step();
  last_lr_ = s.get_last_lr();
}

StateDict SequentialLR::state_dict() const {
  StateDict sd = LRScheduler::state_dict();
  for (size_t i = 0; i < schedulers_.size(); ++i)
    for (auto& [k, v] : schedulers_[i]->state_dict())
      sd[detail::cat("_schedulers.", i, ".", k)] = v;
  return sd;
}

void SequentialLR::load_state_dict(const StateDict& sd) {
  LRScheduler::load_state_dict(sd);
  for (size_t i = 0; i < schedulers_.size(); ++i) {
    const std::string prefix = detail::cat("_schedulers.", i, ".");
    StateDict sub;
    for (auto it = sd.lower_bound(prefix); it != sd.end() && it->first.rfind(prefix, 0) == 0; ++it)
      sub[it->first.substr(prefix.size())] = it->second;
    schedulers_[i]->load_state_dict(sub);
  }
}

}  // namespace anvil::optim
