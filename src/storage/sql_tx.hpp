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

class SqlTx final : public Tx,
                    public SqlEntityRepo,
                    public SqlPlanRepo,
                    public SqlServiceRepo,
                    public SqlHealthRepo,
                    public SqlPaymentRepo,
                    public SqlLocalProviderRepo {
 public:
  SqlTx(sql::Connection& connection, bool write_unit)
      : SqlEntityRepo(connection, write_unit),
        SqlPlanRepo(connection),
        SqlServiceRepo(connection),
        SqlHealthRepo(connection),
        SqlPaymentRepo(connection),
        SqlLocalProviderRepo(connection) {}
};

}  // namespace billing
