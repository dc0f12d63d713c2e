#include "anvil/optim/lbfgs.h"

#include <algorithm>
#include <cmath>
#include <deque>

#include "anvil/autograd/grad_mode.h"
#include "anvil/core/error.h"
#include "anvil/ops/creation.h"
#include "anvil/ops/elementwise.h"
#include "anvil/ops/join.h"
#include "anvil/ops/reduction.h"

namespace anvil::optim {

namespace {

double dot(const Tensor& a, const Tensor& b) { return sum(mul(a, b)).item<double>(); }
double abs_max(const Tensor& a) { return max(abs(a)).item<double>(); }

// Minimum of the cubic interpolating (x1, f1, g1) and (x2, f2, g2), clamped to the bounds
// (default: the interval between x1 and x2).
double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2,
                         std::optional<std::pair<double, double>> bounds = std::nullopt) {
  double lo, hi;
  if (bounds) {
    lo = bounds->first;
    hi = bounds->second;
  } else if (x1 <= x2) {
    lo = x1, hi = x2;
  } else {
    lo = x2, hi = x1;
  }
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2_square = d1 * d1 - g1 * g2;
  if (d2_square >= 0) {
    const double d2 = std::sqrt(d2_square);
    double min_pos;
    if (x1 <= x2)
      min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2));
    else
      min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return std::min(std::max(min_pos, lo), hi);
  }
  return (lo + hi) / 2.0;
}

struct LineSearchResult {
  double f;
  Tensor g;
  double t;
  int64_t func_evals;
};

// torch.optim.lbfgs._strong_wolfe: obj(t) evaluates loss and flat gradient at x + t d.
LineSearchResult strong_wolfe(const std::function<std::pair<double, Tensor>(double)>& obj, double t,
                              const Tensor& d, double f, Tensor g, double gtd,
                              double tolerance_change, int64_t max_ls, double c1 = 1e-4,
                              double c2 = 0.9) {
  const double d_norm = abs_max(d);
  g = g.clone();
  auto [f_new, g_new] = obj(t);
  int64_t ls_func_evals = 1;
  double gtd_new = dot(g_new, d);
  double t_prev = 0, f_prev = f, gtd_prev = gtd;
  Tensor g_prev = g;
  bool done = false;
  int64_t ls_iter = 0;
  std::vector<double> bracket, bracket_f, bracket_gtd;
  std::vector<Tensor> bracket_g;
  while (ls_iter < max_ls) {
    if (f_new > f + c1 * t * gtd || (ls_iter > 1 && f_new >= f_prev)) {
      bracket = {t_prev, t};
      bracket_f = {f_prev, f_new};
      bracket_g = {g_prev, g_new.clone()};
      bracket_gtd = {gtd_prev, gtd_new};
      break;
    }
    if (std::abs(gtd_new) <= -c2 * gtd) {
      bracket = {t};
      bracket_f = {f_new};
      bracket_g = {g_new};
      done = true;
      break;
    }
    if (gtd_new >= 0) {
      bracket = {t_prev, t};
      bracket_f = {f_prev, f_new};
      bracket_g = {g_prev, g_new.clone()};
      bracket_gtd = {gtd_prev, gtd_new};
      break;
    }
    // Extrapolate.
    const double min_step = t + 0.01 * (t - t_prev);
    const double max_step = t * 10;
    const double tmp = t;
    t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                          std::make_pair(min_step, max_step));
    t_prev = tmp;
    f_prev = f_new;
    g_prev = g_new.clone();
    gtd_prev = gtd_new;
    std::tie(f_new, g_new) = obj(t);
    ls_func_evals += 1;
    gtd_new = dot(g_new, d);
    ls_iter += 1;
  }
  if (ls_iter >= max_ls) {  // reached the maximum number of evaluations
    bracket = {0, t};
    bracket_f = {f, f_new};
    bracket_g = {g, g_new};
  }

  // Zoom: shrink the bracket until a point satisfies the strong Wolfe conditions.
  bool insuf_progress = false;
  size_t low_pos = 0, high_pos = 0;
  if (bracket_f.size() > 1) {
    low_pos = bracket_f[0] <= bracket_f.back() ? 0 : 1;
    high_pos = 1 - low_pos;
  }
  while (!done && ls_iter < max_ls) {
    if (std::abs(bracket[1] - bracket[0]) * d_norm < tolerance_change) break;
    t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1],
                          bracket_gtd[1]);
    const double bmax = std::max(bracket[0], bracket[1]), bmin = std::min(bracket[0], bracket[1]);
    const double eps = 0.1 * (bmax - bmin);
    if (std::min(bmax - t, t - bmin) < eps) {
      // Too close to a boundary: move away from it.
      if (insuf_progress || t >= bmax || t <= bmin) {
        t = std::abs(t - bmax) < std::abs(t - bmin) ? bmax - eps : bmin + eps;
        insuf_progress = false;
      } else {
        insuf_progress = true;
      }
    } else {
      insuf_progress = false;
    }
    std::tie(f_new, g_new) = obj(t);
    ls_func_evals += 1;
    gtd_new = dot(g_new, d);
    ls_iter += 1;
    if (f_new > f + c1 * t * gtd || f_new >= bracket_f[low_pos]) {
      bracket[high_pos] = t;
      bracket_f[high_pos] = f_new;
      bracket_g[high_pos] = g_new.clone();
      bracket_gtd[high_pos] = gtd_new;
      low_pos = bracket_f[0] <= bracket_f[1] ? 0 : 1;
      high_pos = 1 - low_pos;
    } else {
      if (std::abs(gtd_new) <= -c2 * gtd) {
        done = true;
      } else if (gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0) {
        bracket[high_pos] = bracket[low_pos];
        bracket_f[high_pos] = bracket_f[low_pos];
        bracket_g[high_pos] = bracket_g[low_pos];
        bracket_gtd[high_pos] = bracket_gtd[low_pos];
      }
      bracket[low_pos] = t;
      bracket_f[low_pos] = f_new;
      bracket_g[low_pos] = g_new.clone();
      bracket_gtd[low_pos] = gtd_new;
    }
  }
  return {bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals};
}

double num(const StateDict& s, const std::string& key, double fallback) {
  auto it = s.find(key);
  return it == s.end() ? fallback : it->second.item<double>();
}

}  // namespace

LBFGS::LBFGS(std::vector<Tensor> params, LBFGSOptions o)
    : Optimizer("LBFGS", {{"lr", o.lr},
                          {"max_iter", double(o.max_iter)},
                          {"max_eval", double(o.max_eval ? *o.max_eval : o.max_iter * 5 / 4)},
                          {"tolerance_grad", o.tolerance_grad},
                          {"tolerance_change", o.tolerance_change},
                          {"history_size", double(o.history_size)},
                          {"maximize", o.maximize}}),
      line_search_fn_(o.line_search_fn) {
  ANVIL_CHECK(line_search_fn_.empty() || line_search_fn_ == "strong_wolfe", ValueError,
              "LBFGS: line_search_fn must be \"\" (none) or \"strong_wolfe\", got \"",
              line_search_fn_, "\"");
  init(single_group(std::move(params)));
}

void LBFGS::validate(const Options& o) const {
  ANVIL_CHECK(o.at("lr") >= 0, ValueError, "LBFGS: invalid learning rate: expected lr >= 0, got ",
              o.at("lr"));
  for (const char* k : {"max_iter", "max_eval", "history_size"})
    ANVIL_CHECK(o.at(k) >= 1, ValueError, "LBFGS: expected ", k, " >= 1, got ", o.at(k));
  ANVIL_CHECK(groups_.empty(), ValueError,
              "LBFGS: doesn't support per-parameter options (parameter groups); got a second "
              "group");
}

// L-BFGS keeps its composed implementation: it needs the closure, and its line search and
// history decide on the host from the loss and gradient dot products, so there is no fused
// update (nor a graph-capturable one). The base step() never gets here (step() throws).
void LBFGS::update_group(size_t, const std::vector<Tensor>&) { step(); }

void LBFGS::step() {
  throw ValueError(
      "LBFGS.step: L-BFGS re-evaluates the loss several times per step; call step(closure) with "
      "a closure that recomputes the loss and its gradients");
}

Tensor LBFGS::gather_flat_grad() const {
  std::vector<Tensor> views;
  for (const auto& p : groups_[0].params)
    views.push_back(p.grad().defined() ? p.grad().reshape({-1}) : zeros({p.numel()}, p.options()));
  Tensor flat = cat(views, 0);
  return groups_[0].options.at("maximize") != 0 ? neg(flat) : flat;
}

void LBFGS::add_grad(double step_size, const Tensor& update) {
  int64_t offset = 0;
  for (Tensor p : groups_[0].params) {
    const int64_t n = p.numel();
    add_(p, update.narrow(0, offset, n).view(p.shape()), step_size);
    offset += n;
  }
}

Tensor LBFGS::step(const std::function<Tensor()>& closure) {
  NoGradGuard no_grad;
  auto evaluate = [&] {
    EnableGradGuard enable;
    return closure();
  };
  auto& params = groups_[0].params;
  if (params.empty()) return evaluate();
  const Options& group = groups_[0].options;
  const double lr = group.at("lr");
  const auto max_iter = int64_t(group.at("max_iter"));
  const auto max_eval = int64_t(group.at("max_eval"));
  const double tolerance_grad = group.at("tolerance_grad");
  const double tolerance_change = group.at("tolerance_change");
  const auto history_size = size_t(group.at("history_size"));
  const bool maximize = group.at("maximize") != 0;

  StateDict& state = state_[params[0].impl()];
  double func_evals = num(state, "func_evals", 0);
  double state_n_iter = num(state, "n_iter", 0);
  auto save_counters = [&] {
    state["func_evals"] = scalar_tensor(func_evals, kFloat64);
    state["n_iter"] = scalar_tensor(state_n_iter, kFloat64);
  };

  Tensor orig_loss = evaluate();
  double loss = orig_loss.item<double>();
  if (maximize) loss = -loss;
  int64_t current_evals = 1;
  func_evals += 1;
  Tensor flat_grad = gather_flat_grad();
  if (abs_max(flat_grad) <= tolerance_grad) {
    save_counters();
    return orig_loss;
  }

  // The state carried over from the previous step.
  Tensor d = state.count("d") ? state.at("d") : Tensor();
  double t = num(state, "t", 0);
  std::deque<Tensor> old_dirs, old_stps;
  std::deque<double> ro;
  for (size_t k = 0; state.count(detail::cat("old_dirs.", k)); ++k) {
    old_dirs.push_back(state.at(detail::cat("old_dirs.", k)));
    old_stps.push_back(state.at(detail::cat("old_stps.", k)));
    ro.push_back(state.at(detail::cat("ro.", k)).item<double>());
  }
  double H_diag = num(state, "H_diag", 1);
  Tensor prev_flat_grad = state.count("prev_flat_grad") ? state.at("prev_flat_grad") : Tensor();
  double prev_loss = num(state, "prev_loss", 0);

  int64_t n_iter = 0;
  while (n_iter < max_iter) {
    n_iter += 1;
    state_n_iter += 1;
    // The descent direction.
    if (state_n_iter == 1) {
      d = neg(flat_grad);
      old_dirs.clear();
      old_stps.clear();
      ro.clear();
      H_diag = 1;
    } else {
      // Update the memory with the last step.
      Tensor y = sub(flat_grad, prev_flat_grad);
      Tensor s = mul(d, t);
      const double ys = dot(y, s);
      if (ys > 1e-10) {
        if (old_dirs.size() == history_size) {
          old_dirs.pop_front();
          old_stps.pop_front();
          ro.pop_front();
        }
        old_dirs.push_back(y);
        old_stps.push_back(s);
        ro.push_back(1.0 / ys);
        H_diag = ys / dot(y, y);
      }
      // Two-loop recursion for H^-1 g.
      const size_t num_old = old_dirs.size();
      std::vector<double> al(num_old);
      Tensor q = neg(flat_grad);
      for (size_t i = num_old; i-- > 0;) {
        al[i] = dot(old_stps[i], q) * ro[i];
        add_(q, old_dirs[i], -al[i]);
      }
      Tensor r = mul(q, H_diag);
      for (size_t i = 0; i < num_old; ++i) {
        const double be_i = dot(old_dirs[i], r) * ro[i];
        add_(r, old_stps[i], al[i] - be_i);
      }
      d = r;
    }
    if (!prev_flat_grad.defined())
      prev_flat_grad = flat_grad.clone();
    else
      prev_flat_grad.copy_(flat_grad);
    prev_loss = loss;

    // The step length.
    if (state_n_iter == 1)
      t = std::min(1.0, 1.0 / sum(abs(flat_grad)).item<double>()) * lr;
    else
      t = lr;
    const double gtd = dot(flat_grad, d);
    if (gtd > -tolerance_change) break;  // not a descent direction

    int64_t ls_func_evals = 0;
    if (!line_search_fn_.empty()) {
      std::vector<Tensor> x_init;
      for (const auto& p : params) x_init.push_back(p.clone());
      auto obj = [&](double step) {
        add_grad(step, d);
        Tensor l = evaluate();
        double f = l.item<double>();
        if (maximize) f = -f;
        Tensor g = gather_flat_grad();
        for (size_t i = 0; i < params.size(); ++i) params[i].copy_(x_init[i]);
        return std::make_pair(f, g);
      };
      auto ls =
          strong_wolfe(obj, t, d, loss, flat_grad, gtd, tolerance_change, max_eval - current_evals);
      loss = ls.f;
      flat_grad = ls.g;
      t = ls.t;
      ls_func_evals = ls.func_evals;
      add_grad(t, d);
    } else {
      add_grad(t, d);
      if (n_iter != max_iter) {
        loss = evaluate().item<double>();
        if (maximize) loss = -loss;
        flat_grad = gather_flat_grad();
        ls_func_evals = 1;
      }
    }
    const bool opt_cond = abs_max(flat_grad) <= tolerance_grad;
    current_evals += ls_func_evals;
    func_evals += double(ls_func_evals);

    if (n_iter == max_iter) break;
    if (current_evals >= max_eval) break;
    if (opt_cond) break;
    if (abs_max(mul(d, t)) <= tolerance_change) break;
    if (std::abs(loss - prev_loss) < tolerance_change) break;
  }

  // Keep the state for the next step.
  for (auto it = state.begin(); it != state.end();) {
    const std::string& k = it->first;
    const bool history =
        k.rfind("old_dirs.", 0) == 0 || k.rfind("old_stps.", 0) == 0 || k.rfind("ro.", 0) == 0;
    it = history ? state.erase(it) : std::next(it);
  }
  for (size_t k = 0; k < old_dirs.size(); ++k) {
    state[detail::cat("old_dirs.", k)] = old_dirs[k];
    state[detail::cat("old_stps.", k)] = old_stps[k];
    state[detail::cat("ro.", k)] = scalar_tensor(ro[k], kFloat64);
  }
  if (d.defined()) state["d"] = d;
  state["t"] = scalar_tensor(t, kFloat64);
  state["H_diag"] = scalar_tensor(H_diag, kFloat64);
  if (prev_flat_grad.defined()) state["prev_flat_grad"] = prev_flat_grad;
  state["prev_loss"] = scalar_tensor(prev_loss, kFloat64);
  save_counters();
  return orig_loss;
}

}  // namespace anvil::optim
