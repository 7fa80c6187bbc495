#pragma once
// `billing serve --dev`: the embedded defaults for a newcomer.
#include "app/config.hpp"
#include "auth/jwt.hpp"
#include "core/db.hpp"
#include "plans/catalog.hpp"

namespace billing {

// Secrets not given in the environment are generated once and kept in
// billing-dev-secrets.json beside the SQLite file.
void apply_dev_secrets(Config& config);
// A few demo hospitals and individuals; demo-hospital-1 has an active lite plan.
void seed_demo_entities(Db& db, const Catalog& catalog, const Clock& clock);
// Tokens for every role and curl lines that use them.
void print_quick_start(const Config& config, const JwtCodec& jwt, const Clock& clock,
                       unsigned short port);

}  // namespace billing
