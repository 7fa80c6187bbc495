// billing: serve | migrate | backup | replay-events | complete-fees | token. See README.md.
#include <malloc.h>
#include <sys/resource.h>

#include <csignal>
#include <iostream>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "app/app.hpp"
#include "app/dev.hpp"
#include "kit/run_blocking.hpp"
#include "kit/text.hpp"
#include "storage/sqlite/backup.hpp"

namespace {

using namespace billing;

Config configure(bool dev) {
  Config config = load_config(process_environment(), dev);
  if (dev) apply_dev_secrets(config);
  auto logger = spdlog::stderr_logger_mt("billing");
  logger->set_formatter(make_log_formatter(config.log_format));
  spdlog::set_default_logger(std::move(logger));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  return config;
}

// Lifts the soft limit of open files to the hard one (as Go's runtime does): Debian's default
// soft limit, 1,024, would cap the service near a thousand connections however many the machine
// allows. The server takes no more connections than the limit leaves (http/server.cpp).
void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
    spdlog::warn("could not raise the open file limit to {}", limit.rlim_max);
}

}  // namespace

int main(int argc, char** argv) {
  // glibc hands freed memory back to the kernel as soon as a thread's heap top is free enough
  // (madvise, then page faults and TLB shootdowns when it is needed again): under a stream of
  // webhooks that cost the writer a tenth of its time. Keep up to 64 MiB instead.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  // A file size limit (ulimit -f) then fails the write that would pass it (a request's: 500, and
  // health 503, core/db.hpp StorageFault; a backup's: its error), rather than kill the process
  // and every request in flight.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App cli{"billing: subscription billing for the healthcare platform"};
  cli.require_subcommand(1);

  auto* serve = cli.add_subcommand("serve", "run the HTTP service (applies migrations first)");
  std::optional<std::string> host;
  std::optional<unsigned short> port;
  bool dev = false;
  serve->add_option("--host", host, "address to listen on (env HOST, default 127.0.0.1)");
  serve->add_option("--port", port, "port to listen on (env PORT, default 8000; 0 picks one)");
  serve->add_flag("--dev", dev,
                  "embedded defaults: SQLite billing.db, generated secrets, demo data");

  auto* migrate = cli.add_subcommand("migrate", "apply schema migrations to DATABASE_URL and exit");
  migrate->add_flag("--dev", dev, "use the --dev defaults");

  auto* backup = cli.add_subcommand(
      "backup", "copy the SQLite database at DATABASE_URL, consistent while the service runs");
  std::string backup_to;
  backup->add_option("--to", backup_to, "the file to write (replaced once the copy is complete)")
      ->required();
  backup->add_flag("--dev", dev, "use the --dev defaults");

  // A command that works through a list, oldest first: --limit N and --dev.
  const auto list_command = [&](const char* name, const char* description, std::size_t& limit,
                                const char* items) {
    auto* command = cli.add_subcommand(name, description);
    command->add_option("--limit", limit, fmt::format("at most this many {} (default 1000)", items))
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
    command->add_flag("--dev", dev, "use the --dev defaults");
    return command;
  };
  std::size_t replay_limit = 1000;
  auto* replay = list_command(
      "replay-events", "apply again the webhook events whose processing failed, oldest first",
      replay_limit, "events");
  std::size_t fees_limit = 1000;
  auto* fees = list_command(
      "complete-fees", "ask Stripe for the fee of each payment still without one, oldest first",
      fees_limit, "payments");

  auto* token = cli.add_subcommand("token", "print a JWT signed with JWT_SECRET_KEY");
  std::string role_name, entity, hospital, subject;
  std::optional<long> minutes;
  token->add_option("--role", role_name, "admin, hospital, individual or assistant")->required();
  token->add_option("--entity", entity, "role_entity_id: the hospital, individual or assistant id")
      ->required();
  token->add_option("--hospital", hospital, "an assistant's hospital id");
  token->add_option("--minutes", minutes, "lifetime (default JWT_ACCESS_TOKEN_EXPIRE_MINUTES)")
      ->check(CLI::Range(1L, 60L * 24 * 365));
  token->add_option("--sub", subject, "the user id (default: user-<entity>)");
  token->add_flag("--dev", dev, "sign with the --dev secrets");

  CLI11_PARSE(cli, argc, argv);
  try {
    Config config = configure(dev);
    if (*token) {
      const auto role = parse_enum<Role>(role_name);
      if (!role) throw ConfigError("--role must be admin, hospital, individual or assistant");
      if (*role == Role::assistant && hospital.empty())
        throw ConfigError("--hospital is required for an assistant token");
      if (*role != Role::admin && entity.empty()) throw ConfigError("--entity must not be empty");
      const Identity identity{subject.empty() ? "user-" + entity : subject, *role,
                              *role == Role::admin ? "" : entity, hospital};
      // The service refuses a token whose ids it would refuse from a client (auth/jwt.cpp).
      for (const auto& [flag, id] :
           {std::pair{"--entity", identity.entity_id},
            std::pair{"--hospital", identity.hospital_id},
            std::pair{subject.empty() ? "--sub (by default user-<entity>)" : "--sub",
                      identity.subject}})
        if (!id.empty() && !plausible_id(id))
          throw ConfigError(
              fmt::format("{} must be 1-128 bytes of UTF-8 without control characters", flag));
      SystemClock clock;
      JwtCodec jwt(config.jwt_secret, clock);
      const auto lifetime = minutes ? std::chrono::minutes(*minutes) : config.jwt_expiry;
      std::cout << jwt.sign(identity, clock.now() + lifetime) << "\n";
      return 0;
    }
    if (*migrate) {
      open_database(config);
      spdlog::info("migrations applied to {}", config.database_shown());
      return 0;
    }
    if (*backup) {
      const auto path = config.sqlite_path();
      if (!path) {
        std::cerr << "billing: backup copies SQLite databases only; for PostgreSQL use pg_dump "
                     "(see README.md, Backups): pg_dump --format=custom --file=FILE "
                     "\"$DATABASE_URL\"\n";
        return 2;
      }
      const auto copied = backup_sqlite(*path, backup_to);
      std::cout << fmt::format("backup of {} written to {} ({} pages, {} bytes)\n", *path,
                               backup_to, copied.pages, copied.bytes);
      return 0;
    }
    if (*replay || *fees) {
      // The service's own composition, not serving: the same receiver applies the events, the
      // same provider is asked for the fees.
      const auto base_url = config.url_for_clients(config.port);
      App app(std::move(config), base_url);
      if (*replay) {
        const auto report = run_blocking([&]() -> boost::asio::awaitable<Payments::ReplayReport> {
          auto applied = co_await app.payments().replay_failed_events(replay_limit);
          // The fees of the payments replayed are asked for once: no waits of minutes here.
          app.payments().stop();
          co_return applied;
        }());
        std::cout << fmt::format("replayed {} failed webhook events: {} applied, {} failed again\n",
                                 report.applied + report.failed, report.applied, report.failed);
        return report.failed == 0 ? 0 : 1;
      }
      const auto report = run_blocking(app.payments().complete_missing_fees(fees_limit));
      std::cout << fmt::format("payments without their fee: {} ({} completed, {} failed)\n",
                               report.completed + report.failed, report.completed, report.failed);
      return report.failed == 0 ? 0 : 1;
    }
    if (host) config.host = *host;
    if (port) config.port = *port;
    raise_open_file_limit();
    ListeningSocket socket(config.host, config.port);  // first: a port in use stops us here
    std::optional<ListeningSocket> metrics_socket;
    if (config.metrics_port) metrics_socket.emplace(config.host, *config.metrics_port);
    const auto metrics_port = metrics_socket ? metrics_socket->port() : 0;
    const auto base_url = config.url_for_clients(socket.port());
    App app(std::move(config), base_url);
    if (dev) seed_demo_entities(app.db(), app.catalog(), app.clock());
    run_blocking(app.payments().resume());
    app.serve(std::move(socket), std::move(metrics_socket), [&](unsigned short bound) {
      // Always printed, whatever LOG_LEVEL says: with --port 0 it is how to learn the port.
      if (metrics_port)
        std::cout << "billing metrics on " << http_url(app.config().host, metrics_port)
                  << "/metrics" << std::endl;
      std::cout << "billing listening on " << http_url(app.config().host, bound) << std::endl;
      if (dev) print_quick_start(app.config(), app.jwt(), app.clock(), bound);
    });
    return 0;
  } catch (const ConfigError& e) {
    std::cerr << "billing: configuration error: " << e.what() << "\n";
    return 2;
  } catch (const CatalogError& e) {
    std::cerr << "billing: plan catalog (PLANS_CONFIG) error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "billing: " << e.what() << "\n";
    return 1;
  }
}
