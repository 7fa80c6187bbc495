#pragma once
// The transactions storage opens on a connection: a write unit's, and each migration's.
#include <span>
#include <vector>

#include "core/db.hpp"
#include "kit/function_ref.hpp"
#include "storage/migrations.hpp"
#include "storage/sql.hpp"

namespace billing {

// Runs `work` in one write transaction on `connection`: commit on return, rollback on throw.
// After the commit, `committed` gets the owners whose plan the unit saved.
using PlansCommitted = FunctionRef<void(std::span<const EntityRef> owners)>;
void run_write_unit(sql::Connection& connection, FunctionRef<void(Tx&)> work,
                    PlansCommitted committed);

// Applies the migrations not yet recorded in schema_migrations, each in its own transaction.
// On PostgreSQL each also takes an advisory lock, so replicas starting together take turns.
void apply_migrations(sql::Connection& connection, const std::vector<Migration>& migrations);

}  // namespace billing
