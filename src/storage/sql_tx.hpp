#pragma once
// One unit of work on one connection, reaching every domain's repository (Tx::get) in the same
// transaction. A new domain repository is one more base and one more initializer here; the
// storage test suite reaches each through Tx::get, so one missing here fails it.
#include "core/db.hpp"
#include "storage/entity_store.hpp"
#include "storage/health_store.hpp"
#include "storage/local_provider_store.hpp"
#include "storage/payment_store.hpp"
#include "storage/plan_store.hpp"
#include "storage/service_store.hpp"

namespace billing {

// What the units of one group-commit batch leave to its end, written then by write().
struct SqlBatch {
  PlanBatch plans;
  PaymentBatch payments;

  void write(sql::Connection& connection) const {
    SqlPlanRepo::write_batch(connection, plans);
    SqlPaymentRepo::write_batch(connection, payments);
  }
};

class SqlTx final : public Tx,
                    public SqlEntityRepo,
                    public SqlPlanRepo,
                    public SqlServiceRepo,
                    public SqlHealthRepo,
                    public SqlPaymentRepo,
                    public SqlLocalProviderRepo {
 public:
  // A unit of a group-commit batch leaves its plan changes, history, audit rows, queued claims
  // and payments in `batch`.
  SqlTx(sql::Connection& connection, bool write_unit, SqlBatch* batch = nullptr)
      : SqlEntityRepo(connection, write_unit),
        SqlPlanRepo(connection, batch ? &batch->plans : nullptr),
        SqlServiceRepo(connection),
        SqlHealthRepo(connection),
        SqlPaymentRepo(connection, batch ? &batch->payments : nullptr),
        SqlLocalProviderRepo(connection) {}
};

}  // namespace billing
