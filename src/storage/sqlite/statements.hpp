#pragma once
#include "storage/sql.hpp"

namespace billing {
const sql::Statements& sqlite_statements();
}
