# Writes a C++ header holding schema/schema.sql and every schema/migrations/NNNN_*.sql.
file(READ ${SCHEMA} schema_sql)
file(GLOB migrations ${MIGRATIONS_DIR}/[0-9][0-9][0-9][0-9]_*.sql)
list(SORT migrations)
set(entries "")
foreach(m IN LISTS migrations)
  get_filename_component(name ${m} NAME)
  string(SUBSTRING ${name} 0 4 version)
  math(EXPR version "${version}")
  file(READ ${m} sql)
  string(APPEND entries "  {${version}, R\"smimea_sql(${sql})smimea_sql\"},\n")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from schema/ by cmake/embed_schema.cmake. Do not edit.
#pragma once
namespace smimea::detail {
inline constexpr const char* kSchemaSql = R\"smimea_sql(${schema_sql})smimea_sql\";
struct Migration { int version; const char* sql; };
inline constexpr Migration kMigrations[] = {
${entries}  {0, nullptr}  // sentinel: keeps the array non-empty
};
}  // namespace smimea::detail
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
