#include "telemetry/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "telemetry/text.hpp"

namespace orchard::telemetry {
namespace {

constexpr double kLn2 = 0.69314718055994530942;

bool valid_metric_name(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view s) {
  if (s.empty() || s.starts_with("__")) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string_view type_name(MetricType t) {
  switch (t) {
    case MetricType::counter: return "counter";
    case MetricType::histogram: return "histogram";
    case MetricType::gauge: return "gauge";
    case MetricType::ewma: return "gauge (ewma)";
    case MetricType::rate: return "gauge (rate)";
    case MetricType::gauge_callback: return "gauge (callback)";
  }
  return "?";
}

std::string_view exposition_type(MetricType t) {
  if (t == MetricType::counter) return "counter";
  if (t == MetricType::histogram) return "histogram";
  return "gauge";
}

// Appends a sample value: shortest round-trip decimal, or +Inf / -Inf / NaN.
void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("NaN");
  } else if (std::isinf(v)) {
    out.append(v > 0 ? "+Inf" : "-Inf");
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, r.ptr);
  }
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void append_help(std::string& out, std::string_view help) {
  detail::append_utf8(out, help, [](std::string& o, char c) {
    if (c == '\\') o.append("\\\\");
    else if (c == '\n') o.append("\\n");
    else o.push_back(c);
  });
}

void append_label_value(std::string& out, std::string_view v) {
  detail::append_utf8(out, v, [](std::string& o, char c) {
    if (c == '\\') o.append("\\\\");
    else if (c == '\n') o.append("\\n");
    else if (c == '"') o.append("\\\"");
    else o.push_back(c);
  });
}

// Appends `{a="x",b="y"}` (plus le="..." when `le` is given); nothing when there are no labels.
void append_labels(std::string& out, const std::vector<std::string>& names, const std::vector<std::string>& values,
                   const std::string* le = nullptr) {
  if (names.empty() && !le) return;
  out.push_back('{');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out.push_back(',');
    out.append(names[i]);
    out.append("=\"");
    append_label_value(out, values[i]);
    out.push_back('"');
  }
  if (le) {
    if (!names.empty()) out.push_back(',');
    out.append("le=\"");
    out.append(*le);
    out.push_back('"');
  }
  out.push_back('}');
}

std::string format_bound(double b) {
  std::string s;
  append_double(s, b);
  return s;
}

std::string labels_text(const Labels& labels) {
  std::string s = "{";
  for (size_t i = 0; i < labels.size(); ++i) s += (i ? "," : "") + labels[i].first + "=\"" + labels[i].second + "\"";
  return s + "}";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Histogram

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::erase_if(bounds_, [](double b) { return !std::isfinite(b); });
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  buckets_ = std::make_unique<Bucket[]>(bounds_.size() + 1);
}

uint64_t Histogram::count() const {
  uint64_t n = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) n += buckets_[i].value.load(std::memory_order_relaxed);
  return n;
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot s;
  s.upper_bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    s.counts[i] = buckets_[i].value.load(std::memory_order_relaxed);
    s.count += s.counts[i];
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

double HistogramSnapshot::percentile(double q) const {
  if (count == 0 || std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(count);
  uint64_t below = 0;  // observations in the buckets before i
  size_t i = 0;
  for (; i < counts.size(); ++i) {
    if (counts[i] > 0 && static_cast<double>(below + counts[i]) >= rank) break;
    below += counts[i];
  }
  if (i >= upper_bounds.size()) {  // the +Inf bucket (or past the end through rounding)
    return upper_bounds.empty() ? std::numeric_limits<double>::quiet_NaN() : upper_bounds.back();
  }
  const double upper = upper_bounds[i];
  double lower;
  if (i > 0) {
    lower = upper_bounds[i - 1];
  } else if (upper > 0) {
    lower = 0;  // the first bucket of non-negative data starts at 0
  } else {
    return upper;
  }
  const double within = (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
  return lower + (upper - lower) * std::clamp(within, 0.0, 1.0);
}

std::vector<double> exponential_buckets(double start, double factor, size_t count) {
  std::vector<double> b;
  if (!(start > 0) || !(factor > 1)) return b;
  for (size_t i = 0; i < count; ++i) b.push_back(start * std::pow(factor, static_cast<double>(i)));
  return b;
}

std::vector<double> linear_buckets(double start, double width, size_t count) {
  std::vector<double> b;
  if (!(width > 0)) return b;
  for (size_t i = 0; i < count; ++i) b.push_back(start + width * static_cast<double>(i));
  return b;
}

std::vector<double> latency_buckets_seconds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

// ---------------------------------------------------------------------------------------------------------------
// EwmaRate

EwmaRate::EwmaRate(std::chrono::nanoseconds half_life)
    : half_life_(std::max(half_life, std::chrono::nanoseconds(1))),
      tau_ns_(static_cast<double>(half_life_.count()) / kLn2) {}

void EwmaRate::record(int64_t now_ns, uint64_t n) noexcept {
  // Claim the interval (prev, now] of the timeline; each interval's decay is then applied exactly once.
  int64_t prev = last_ns_.load(std::memory_order_relaxed);
  while (now_ns > prev && !last_ns_.compare_exchange_weak(prev, now_ns, std::memory_order_relaxed)) {
  }
  if (prev == kNoEvent) return;  // the first event starts the clock
  double decay = 1.0, add;
  if (now_ns > prev) {
    const double dt_ns = static_cast<double>(now_ns - prev);
    const double x = dt_ns / tau_ns_;
    decay = std::exp(-x);
    add = static_cast<double>(n) * -std::expm1(-x) / (dt_ns * 1e-9);
  } else {
    add = static_cast<double>(n) / (tau_ns_ * 1e-9);  // the limit of the above as dt -> 0
  }
  uint64_t old_bits = rate_bits_.load(std::memory_order_relaxed);
  for (;;) {
    const double next = std::bit_cast<double>(old_bits) * decay + add;
    if (rate_bits_.compare_exchange_weak(old_bits, std::bit_cast<uint64_t>(next), std::memory_order_relaxed,
                                         std::memory_order_relaxed))
      return;
  }
}

double EwmaRate::value_at(int64_t now_ns) const noexcept {
  const int64_t last = last_ns_.load(std::memory_order_relaxed);
  const double r = value();
  if (last == kNoEvent || now_ns <= last) return r;
  return r * std::exp(-static_cast<double>(now_ns - last) / tau_ns_);
}

// ---------------------------------------------------------------------------------------------------------------
// MetricsRegistry

struct MetricsRegistry::Params {
  MetricType type;
  std::span<const double> bounds = {};
  double alpha = 0;
  int64_t half_life_ns = 0;
  std::function<double()>* fn = nullptr;
};

struct MetricsRegistry::Family {
  std::string name, help;
  MetricType type;
  std::vector<std::string> label_names;  // sorted
  std::vector<double> bounds;
  double alpha = 0;
  int64_t half_life_ns = 0;
  std::map<std::vector<std::string>, std::shared_ptr<void>> series;  // key: values in label_names order
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

Result<std::shared_ptr<void>> MetricsRegistry::get_or_create(std::string_view name_in, std::string_view help,
                                                             const Labels& labels_in, const Params& p) {
  if (!valid_metric_name(name_in)) return invalid_argument("[metrics] invalid metric name '", name_in, "'");
  std::string name(name_in);
  if (p.type == MetricType::counter && !name.ends_with("_total")) name += "_total";

  Labels labels = labels_in;
  std::sort(labels.begin(), labels.end());
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& ln = labels[i].first;
    if (!valid_label_name(ln)) return invalid_argument("[metrics] ", name, ": invalid label name '", ln, "'");
    if (p.type == MetricType::histogram && ln == "le")
      return invalid_argument("[metrics] ", name, ": label name 'le' is reserved for histogram buckets");
    if (i > 0 && labels[i - 1].first == ln) return invalid_argument("[metrics] ", name, ": label '", ln, "' repeated");
  }
  std::vector<std::string> names, values;
  for (auto& [k, v] : labels) {
    names.push_back(k);
    values.push_back(v);
  }

  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) {
    // A histogram exports name_bucket, name_sum and name_count: no other family may use those names.
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (name.ends_with(suffix)) {
        auto base = families_.find(std::string_view(name).substr(0, name.size() - suffix.size()));
        if (base != families_.end() && base->second->type == MetricType::histogram)
          return invalid_argument("[metrics] ", name, " collides with the series of histogram ", base->first);
      }
      if (p.type == MetricType::histogram && families_.count(name + std::string(suffix)))
        return invalid_argument("[metrics] histogram ", name, " collides with metric ", name, suffix);
    }
    if (p.type == MetricType::histogram) {
      for (size_t i = 0; i < p.bounds.size(); ++i) {
        if (!std::isfinite(p.bounds[i]) || (i > 0 && !(p.bounds[i] > p.bounds[i - 1])))
          return invalid_argument("[metrics] histogram ", name, ": bucket bounds must be finite and strictly ",
                                  "increasing; bound ", i, " is ", p.bounds[i]);
      }
    }
    if (p.type == MetricType::ewma && !(p.alpha > 0 && p.alpha <= 1))
      return invalid_argument("[metrics] ewma ", name, ": alpha ", p.alpha, " is not in (0, 1]");
    if (p.type == MetricType::rate && p.half_life_ns <= 0)
      return invalid_argument("[metrics] rate ", name, ": half-life ", p.half_life_ns, " ns is not positive");
    auto f = std::make_unique<Family>();
    f->name = name;
    f->help = std::string(help);
    f->type = p.type;
    f->label_names = names;
    f->bounds.assign(p.bounds.begin(), p.bounds.end());
    f->alpha = p.alpha;
    f->half_life_ns = p.half_life_ns;
    it = families_.emplace(name, std::move(f)).first;
  }
  Family& f = *it->second;
  if (f.type != p.type)
    return invalid_argument("[metrics] ", name, " is a ", type_name(f.type), ", not a ", type_name(p.type));
  if (f.label_names != names)
    return invalid_argument("[metrics] ", name, ": labels ", labels_text(labels),
                            " do not have the label names of the family's other series");
  if (p.type == MetricType::histogram && !std::equal(f.bounds.begin(), f.bounds.end(), p.bounds.begin(), p.bounds.end()))
    return invalid_argument("[metrics] histogram ", name, " already exists with other bucket bounds");
  if (p.type == MetricType::ewma && f.alpha != p.alpha)
    return invalid_argument("[metrics] ewma ", name, " already exists with alpha ", f.alpha, ", not ", p.alpha);
  if (p.type == MetricType::rate && f.half_life_ns != p.half_life_ns)
    return invalid_argument("[metrics] rate ", name, " already exists with half-life ", f.half_life_ns, " ns");

  auto& slot = f.series[values];
  if (p.type == MetricType::gauge_callback) {
    slot = std::make_shared<std::function<double()>>(std::move(*p.fn));
  } else if (!slot) {
    switch (p.type) {
      case MetricType::counter: slot = std::make_shared<Counter>(); break;
      case MetricType::gauge: slot = std::make_shared<Gauge>(); break;
      case MetricType::histogram: slot = std::make_shared<Histogram>(f.bounds); break;
      case MetricType::ewma: slot = std::make_shared<Ewma>(f.alpha); break;
      case MetricType::rate: slot = std::make_shared<EwmaRate>(std::chrono::nanoseconds(f.half_life_ns)); break;
      case MetricType::gauge_callback: break;
    }
  }
  return slot;
}

Result<std::shared_ptr<Counter>> MetricsRegistry::counter(std::string_view name, std::string_view help,
                                                          const Labels& labels) {
  ORCHARD_ASSIGN_OR_RETURN(auto p, get_or_create(name, help, labels, {MetricType::counter}));
  return std::static_pointer_cast<Counter>(p);
}

Result<std::shared_ptr<Gauge>> MetricsRegistry::gauge(std::string_view name, std::string_view help,
                                                      const Labels& labels) {
  ORCHARD_ASSIGN_OR_RETURN(auto p, get_or_create(name, help, labels, {MetricType::gauge}));
  return std::static_pointer_cast<Gauge>(p);
}

Result<std::shared_ptr<Histogram>> MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                                              std::span<const double> upper_bounds,
                                                              const Labels& labels) {
  ORCHARD_ASSIGN_OR_RETURN(auto p, get_or_create(name, help, labels, {MetricType::histogram, upper_bounds}));
  return std::static_pointer_cast<Histogram>(p);
}

Result<std::shared_ptr<Ewma>> MetricsRegistry::ewma(std::string_view name, std::string_view help, double alpha,
                                                    const Labels& labels) {
  ORCHARD_ASSIGN_OR_RETURN(auto p, get_or_create(name, help, labels, {MetricType::ewma, {}, alpha}));
  return std::static_pointer_cast<Ewma>(p);
}

Result<std::shared_ptr<EwmaRate>> MetricsRegistry::rate(std::string_view name, std::string_view help,
                                                        std::chrono::nanoseconds half_life, const Labels& labels) {
  ORCHARD_ASSIGN_OR_RETURN(auto p, get_or_create(name, help, labels, {MetricType::rate, {}, 0, half_life.count()}));
  return std::static_pointer_cast<EwmaRate>(p);
}

Status MetricsRegistry::gauge_callback(std::string_view name, std::string_view help, const Labels& labels,
                                       std::function<double()> fn) {
  if (!fn) return invalid_argument("[metrics] gauge callback ", name, " is empty");
  Params p{MetricType::gauge_callback};
  p.fn = &fn;
  return get_or_create(name, help, labels, p).status();
}

bool MetricsRegistry::remove(std::string_view name, const Labels& labels_in) {
  Labels labels = labels_in;
  std::sort(labels.begin(), labels.end());
  std::vector<std::string> names, values;
  for (auto& [k, v] : labels) {
    names.push_back(k);
    values.push_back(v);
  }
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end() && !std::string_view(name).ends_with("_total"))
    it = families_.find(std::string(name) + "_total");  // counters are registered with the suffix
  if (it == families_.end() || it->second->label_names != names) return false;
  return it->second->series.erase(values) > 0;
}

size_t MetricsRegistry::remove_matching(const Labels& match) {
  std::lock_guard lock(mu_);
  size_t removed = 0;
  for (auto& [name, f] : families_) {
    std::vector<std::pair<size_t, const std::string*>> wanted;  // label index, value
    bool applicable = true;
    for (auto& [k, v] : match) {
      auto pos = std::find(f->label_names.begin(), f->label_names.end(), k);
      if (pos == f->label_names.end()) {
        applicable = false;
        break;
      }
      wanted.emplace_back(pos - f->label_names.begin(), &v);
    }
    if (!applicable) continue;
    removed += std::erase_if(f->series, [&](const auto& s) {
      for (auto& [i, v] : wanted)
        if (s.first[i] != *v) return false;
      return true;
    });
  }
  return removed;
}

size_t MetricsRegistry::series_count() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (auto& [name, f] : families_) n += f->series.size();
  return n;
}

std::string MetricsRegistry::prometheus_text() const {
  std::string out;
  const int64_t now = steady_now_ns();
  std::lock_guard lock(mu_);
  for (auto& [name, fp] : families_) {
    const Family& f = *fp;
    if (f.series.empty()) continue;
    out.append("# HELP ").append(name).push_back(' ');
    append_help(out, f.help);
    out.append("\n# TYPE ").append(name).push_back(' ');
    out.append(exposition_type(f.type)).push_back('\n');
    for (auto& [values, ptr] : f.series) {
      if (f.type == MetricType::histogram) {
        const HistogramSnapshot s = static_cast<const Histogram*>(ptr.get())->snapshot();
        uint64_t cumulative = 0;
        for (size_t i = 0; i < s.counts.size(); ++i) {
          cumulative += s.counts[i];
          const std::string le = i < s.upper_bounds.size() ? format_bound(s.upper_bounds[i]) : "+Inf";
          out.append(name).append("_bucket");
          append_labels(out, f.label_names, values, &le);
          out.push_back(' ');
          append_uint(out, cumulative);
          out.push_back('\n');
        }
        out.append(name).append("_sum");
        append_labels(out, f.label_names, values);
        out.push_back(' ');
        append_double(out, s.sum);
        out.append("\n").append(name).append("_count");
        append_labels(out, f.label_names, values);
        out.push_back(' ');
        append_uint(out, s.count);
        out.push_back('\n');
        continue;
      }
      out.append(name);
      append_labels(out, f.label_names, values);
      out.push_back(' ');
      switch (f.type) {
        case MetricType::counter: append_uint(out, static_cast<const Counter*>(ptr.get())->value()); break;
        case MetricType::gauge: append_double(out, static_cast<const Gauge*>(ptr.get())->value()); break;
        case MetricType::ewma: append_double(out, static_cast<const Ewma*>(ptr.get())->value()); break;
        case MetricType::rate: append_double(out, static_cast<const EwmaRate*>(ptr.get())->value_at(now)); break;
        case MetricType::gauge_callback:
          append_double(out, (*static_cast<const std::function<double()>*>(ptr.get()))());
          break;
        case MetricType::histogram: break;
      }
      out.push_back('\n');
    }
  }
  return out;
}

}  // namespace orchard::telemetry
