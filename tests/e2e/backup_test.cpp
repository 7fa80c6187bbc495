// `billing backup --to FILE` while the service takes writes: the copy restores into a working
// service and holds every write acknowledged before the backup began.
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include "kit/run_blocking.hpp"
#include "plans/repo.hpp"
#include "tests/e2e/client.hpp"

namespace billing::e2e {
namespace {

using ::testing::HasSubstr;

Env backup_env(const std::string& database_url) {
  return {{"JWT_SECRET_KEY", std::string(kJwtSecret)},
          {"CSRF_SECRET_KEY", std::string(kCsrfSecret)},
          {"DATABASE_URL", database_url}};
}

// PRAGMA integrity_check's answer: "ok" for a sound file.
std::string integrity_check(const std::string& path) {
  sqlite3* db = nullptr;
  std::string answer = "cannot open " + path;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* statement = nullptr;
    answer = "cannot run integrity_check";
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW)
      answer = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    sqlite3_finalize(statement);
  }
  sqlite3_close(db);
  return answer;
}

// Hospitals choosing a plan from several connections until stopped. Each write is a new
// hospital's first request and plan selection; `before` gets the hospitals whose selection was
// answered 200 before `backup_began` was set.
class Writers {
 public:
  Writers(unsigned short port, const std::atomic<bool>& backup_began) {
    for (int w = 0; w < 4; ++w)
      threads_.emplace_back([this, port, &backup_began] {
        HttpClient client(port);
        while (!stop_) {
          const auto hospital = unique_id("hosp-backup");
          const auto token = sign_token(hospital_user(hospital));
          auto headers = bearer(token);
          headers.emplace_back("X-CSRF-Token", fetch_csrf_token(client, token));
          const auto body =
              boost::json::serialize(boost::json::object{{"plan_type", "lite"}, {"id", hospital}});
          const auto response = client.post("/billing/plan/select", body, headers);
          if (response.status != 200) {
            ADD_FAILURE() << response.status << " " << response.body;
            return;
          }
          // Read after the 200 arrived: false means the answer came before the backup began.
          const bool during = backup_began;
          const std::lock_guard lock(mutex_);
          (during ? during_ : before_).push_back(hospital);
        }
      });
  }
  ~Writers() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::size_t acknowledged() const {
    const std::lock_guard lock(mutex_);
    return before_.size() + during_.size();
  }
  // After stop().
  const std::vector<std::string>& before() const { return before_; }
  const std::vector<std::string>& during() const { return during_; }

 private:
  std::atomic<bool> stop_ = false;
  mutable std::mutex mutex_;
  std::vector<std::string> before_, during_;
  std::vector<std::thread> threads_;
};

TEST(E2eBackup, UnderWriteLoadHoldsEveryWriteAcknowledgedBeforeItBegan) {
  BillingServer server({});
  const TempDir dir;
  const auto file = dir.path() + "/billing-backup.db";

  std::atomic<bool> backup_began = false;
  Writers writers(server.port(), backup_began);
  ASSERT_TRUE(eventually([&] { return writers.acknowledged() >= 200; }, 60s));
  backup_began = true;
  const auto result = run_billing({"backup", "--to", file}, backup_env(server.database_url()), 60s);
  // Some more writes land after the backup, so the service demonstrably kept going.
  const auto after = writers.acknowledged();
  EXPECT_TRUE(eventually([&] { return writers.acknowledged() >= after + 20; }, 30s));
  writers.stop();
  ASSERT_EQ(result.code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("written to " + file));
  ASSERT_FALSE(writers.before().empty());

  std::vector<std::string> leftovers;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    if (entry.path() != file) leftovers.push_back(entry.path().filename().string());
  EXPECT_THAT(leftovers, ::testing::IsEmpty()) << "the temporary file must become the backup";
  EXPECT_EQ(integrity_check(file), "ok");

  BillingServer restored({.database_url = "sqlite:///" + file});
  HttpClient client(restored.port());
  const auto first = writers.before().front();
  const auto plan =
      client.get("/billing/plan/current?entity_id=" + first, bearer(sign_token(admin_user())));
  EXPECT_EQ(plan.status, 200) << plan.body;

  auto db = open_server_db(restored);
  const auto missing = run_blocking(db->read([&](Tx& tx) {
    std::vector<std::string> absent;
    for (const auto& hospital : writers.before())
      if (!tx.get<PlanRepo>().find_plan({EntityKind::hospital, hospital}))
        absent.push_back(hospital);
    return absent;
  }));
  EXPECT_THAT(missing, ::testing::IsEmpty()) << missing.size() << " of " << writers.before().size()
                                             << " acknowledged writes are not in the backup";
  std::cout << writers.before().size() << " writes acknowledged before the backup, "
            << writers.during().size() << " during and after it\n";
}

TEST(E2eBackup, RefusesWhatItCannotDoWithAClearMessage) {
  const TempDir dir;
  const auto database = dir.path() + "/billing.db";
  const auto env = backup_env("sqlite:///" + database);
  ASSERT_EQ(run_billing({"migrate"}, env).code, 0);

  const auto no_directory = run_billing({"backup", "--to", dir.path() + "/no/such/b.db"}, env);
  EXPECT_NE(no_directory.code, 0);
  EXPECT_THAT(no_directory.output,
              HasSubstr("the directory " + dir.path() + "/no/such does not exist"));

  const auto onto_itself = run_billing({"backup", "--to", database}, env);
  EXPECT_NE(onto_itself.code, 0);
  EXPECT_THAT(onto_itself.output, HasSubstr("onto itself"));
  // Nor onto the files SQLite keeps beside it, there or not: a backup renamed over the live
  // write-ahead log would lose what it holds.
  for (const auto& beside : {database + "-wal", database + "-shm", database + "-journal",
                             dir.path() + "/./billing.db-wal"}) {
    const auto refused = run_billing({"backup", "--to", beside}, env);
    EXPECT_NE(refused.code, 0) << beside;
    EXPECT_THAT(refused.output, HasSubstr("onto itself or the files beside it")) << beside;
  }
  EXPECT_FALSE(std::filesystem::exists(database + "-journal"));

  const auto no_database = run_billing({"backup", "--to", dir.path() + "/b.db"},
                                       backup_env("sqlite:///" + dir.path() + "/absent.db"));
  EXPECT_NE(no_database.code, 0);
  EXPECT_THAT(no_database.output, HasSubstr("no SQLite database at " + dir.path() + "/absent.db"));

  const auto postgres = run_billing({"backup", "--to", dir.path() + "/b.db"},
                                    backup_env("postgresql://billing@127.0.0.1:1/billing"));
  EXPECT_EQ(postgres.code, 2);
  EXPECT_THAT(postgres.output, HasSubstr("pg_dump --format=custom"));

  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    EXPECT_THAT(entry.path().string(), ::testing::Not(HasSubstr(".partial-")));
}

}  // namespace
}  // namespace billing::e2e
