#pragma once
// The middleware chain: typed steps, composed once (app/middleware.hpp), that every request
// passes through on its way to its route's handler. A step looks at the call before the handler
// and either answers (a Response, or an ApiError thrown) or passes on; it may also see the
// response on the way out, in reverse order. Steps are concrete types handed to the chain by
// reference, so a step left out or misspelled is a compile error, and routes cannot skip one:
// they only declare the policy the steps read.
#include <array>
#include <chrono>
#include <concepts>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include "http/route.hpp"

namespace billing {

// Answers or passes on, synchronously.
template <class S>
concept AnsweringStep = requires(S& s, Call& call) {
  { s.before(call) } -> std::same_as<std::optional<Response>>;
};
// Passes on, after awaiting some work when the call is not `ready` (e.g. a database write).
template <class S>
concept PreparingStep = requires(S& s, Call& call) {
  { s.ready(std::as_const(call)) } -> std::same_as<bool>;
  { s.prepare(call) } -> std::same_as<boost::asio::awaitable<void>>;
};
// Sees (and may add to) the response on its way out; must not throw. A step that also has a
// `before` gets it run for responses the server makes itself too (Pipeline::finish), where an
// answer from it is dropped: such a `before` sets the call up and answers nothing.
template <class S>
concept ObservingStep = requires(S& s, const Call& call, Response& response) {
  s.after(call, response);
};
template <class S>
concept Step = AnsweringStep<S> || PreparingStep<S> || ObservingStep<S>;

// What the server hands each request to.
class Pipeline {
 public:
  virtual ~Pipeline() = default;
  // Never throws: every failure becomes a response.
  virtual boost::asio::awaitable<Response> handle(Call& call) const = 0;
  // A response the server made itself (malformed HTTP, a body over the limit): it still goes
  // through the steps that see responses (request id, access log, metrics), and only those.
  virtual void finish(Call& call, Response& response) const = 0;
};

// One step, type-erased so that the chain runs as one loop in one coroutine frame.
struct StepCalls {
  void* step;
  std::optional<Response> (*before)(void*, Call&);
  bool (*ready)(void*, const Call&);
  boost::asio::awaitable<void> (*prepare)(void*, Call&);
  void (*after)(void*, const Call&, Response&);
};

boost::asio::awaitable<Response> run_steps(std::span<const StepCalls> steps, Call& call);
void finish_steps(std::span<const StepCalls> steps, Call& call, Response& response);

template <Step... Steps>
class Chain final : public Pipeline {
 public:
  explicit Chain(Steps&... steps) : steps_{calls(steps)...} {}

  // Whether S is a step, and where it runs (0 first): for static_asserts on the composition.
  template <class S>
  static constexpr bool contains() {
    return (std::is_same_v<S, Steps> || ...);
  }
  template <class S>
  static constexpr std::size_t position() {
    constexpr bool found[] = {std::is_same_v<S, Steps>...};
    for (std::size_t i = 0; i < sizeof...(Steps); ++i)
      if (found[i]) return i;
    return sizeof...(Steps);
  }

  boost::asio::awaitable<Response> handle(Call& call) const override {
    return run_steps(steps_, call);
  }
  void finish(Call& call, Response& response) const override {
    finish_steps(steps_, call, response);
  }

 private:
  template <class S>
  static StepCalls calls(S& step) {
    // A hook with a mistyped signature would otherwise be skipped without a word.
    static_assert(
        !requires { &S::before; } || AnsweringStep<S>, "before(Call&) -> optional<Response>");
    static_assert(
        !requires { &S::after; } || ObservingStep<S>, "after(const Call&, Response&)");
    static_assert(!(
                      requires { &S::ready; } || requires { &S::prepare; }) ||
                      PreparingStep<S>,
                  "ready(const Call&) -> bool and prepare(Call&) -> awaitable<void>");
    StepCalls c{&step, nullptr, nullptr, nullptr, nullptr};
    if constexpr (AnsweringStep<S>)
      c.before = [](void* s, Call& call) { return static_cast<S*>(s)->before(call); };
    if constexpr (PreparingStep<S>) {
      c.ready = [](void* s, const Call& call) { return static_cast<S*>(s)->ready(call); };
      c.prepare = [](void* s, Call& call) { return static_cast<S*>(s)->prepare(call); };
    }
    if constexpr (ObservingStep<S>)
      c.after = [](void* s, const Call& call, Response& r) { static_cast<S*>(s)->after(call, r); };
    return c;
  }

  std::array<StepCalls, sizeof...(Steps)> steps_;
};

}  // namespace billing
