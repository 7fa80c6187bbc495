#pragma once
// Everything between a parsed request and its response: route lookup, the bearer token, the
// permission matrix, CSRF, enrolment of new entities, the handler, and error mapping.
#include <boost/asio/awaitable.hpp>

#include "auth/csrf.hpp"
#include "auth/enrollment.hpp"
#include "auth/jwt.hpp"
#include "http/route.hpp"
#include "kit/clock.hpp"

namespace billing {

class Dispatcher {
 public:
  Dispatcher(const Router& router, const JwtCodec& jwt, const CsrfTokens& csrf,
             Enrollment& enrollment, const Clock& clock)
      : router_(router), jwt_(jwt), csrf_(csrf), enrollment_(enrollment), clock_(clock) {}

  // Never throws: every failure is a response.
  boost::asio::awaitable<Response> handle(const Request* request) const;

 private:
  boost::asio::awaitable<Response> run(const Route& route, const Request* request) const;
  Identity authenticate(const Request& request) const;

  const Router& router_;
  const JwtCodec& jwt_;
  const CsrfTokens& csrf_;
  Enrollment& enrollment_;
  const Clock& clock_;
};

}  // namespace billing
