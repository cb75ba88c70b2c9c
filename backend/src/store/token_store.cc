// API tokens in the store (tokens, token_scopes): never a secret, only its SHA2-256.
#include <algorithm>

#include "store_impl.h"

namespace smimea {

using detail::now_seconds;
using detail::Statement;

namespace {

constexpr const char* kTokenColumns =
    "SELECT id, name, secret_sha256, read_only, admin, expires_at, created_at, created_by "
    "FROM tokens";

Token token_from_row(const Statement& s) {
  Token t;
  t.id = s.int64(0);
  t.name.assign(s.text(1));
  if (s.bytes(2) == t.secret_sha256.size()) {
    std::copy(s.blob(2), s.blob(2) + t.secret_sha256.size(), t.secret_sha256.begin());
  }
  t.read_only = s.int64(3) != 0;
  t.admin = s.int64(4) != 0;
  if (!s.is_null(5)) t.expires_at = s.int64(5);
  t.created_at = s.int64(6);
  t.created_by.assign(s.text(7));
  return t;
}

}  // namespace

Status SqliteStore::read_scopes(Token* token) {
  Statement& s = impl_->token_scopes;
  SMIMEA_RETURN_IF_ERROR(s.prepare(
      impl_->db.get(), "SELECT kind, value FROM token_scopes WHERE token_id = ?1 ORDER BY rowid"));
  s.bind(1, token->id);
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    const std::string_view kind = s.text(0);
    std::vector<std::string>& list = kind == "zone"      ? token->zones
                                     : kind == "address" ? token->addresses
                                                         : token->networks;
    list.emplace_back(s.text(1));
  }
  s.reset();
  if (rc != SQLITE_DONE) return impl_->error("read token scopes");
  return Status();
}

Result<Token> SqliteStore::add_token(const Token& token) {
  sqlite3* db = impl_->db.get();
  Statement exists;
  SMIMEA_RETURN_IF_ERROR(
      exists.prepare(db, "SELECT 1 FROM tokens WHERE name = ?1 OR secret_sha256 = ?2"));
  exists.bind_text(1, token.name);
  exists.bind_blob(2, token.secret_sha256.data(), token.secret_sha256.size());
  const int found = exists.step();
  if (found == SQLITE_ROW) return Status::conflict(token.name, "a token with this name exists");
  if (found != SQLITE_DONE) return impl_->error("find token");
  Statement ins;
  SMIMEA_RETURN_IF_ERROR(ins.prepare(
      db,
      "INSERT INTO tokens (name, secret_sha256, read_only, admin, expires_at, created_at, "
      "created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  Token stored = token;
  stored.created_at = now_seconds();
  ins.bind_text(1, stored.name);
  ins.bind_blob(2, stored.secret_sha256.data(), stored.secret_sha256.size());
  ins.bind(3, stored.read_only ? 1 : 0);
  ins.bind(4, stored.admin ? 1 : 0);
  if (stored.expires_at) {
    ins.bind(5, *stored.expires_at);
  } else {
    ins.bind_null(5);
  }
  ins.bind(6, stored.created_at);
  ins.bind_text(7, stored.created_by);
  if (ins.step() != SQLITE_DONE) return impl_->error("add token " + stored.name);
  stored.id = sqlite3_last_insert_rowid(db);
  Statement scope;
  for (const auto& [kind, values] :
       {std::pair<const char*, const std::vector<std::string>*>{"zone", &stored.zones},
        {"address", &stored.addresses},
        {"network", &stored.networks}}) {
    for (const std::string& value : *values) {
      SMIMEA_RETURN_IF_ERROR(scope.prepare(
          db, "INSERT OR IGNORE INTO token_scopes (token_id, kind, value) VALUES (?1, ?2, ?3)"));
      scope.bind(1, stored.id);
      scope.bind_text(2, kind);
      scope.bind_text(3, value);
      if (scope.step() != SQLITE_DONE) return impl_->error("add token scope");
    }
  }
  return stored;
}

Result<std::vector<Token>> SqliteStore::list_tokens() {
  Statement s;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(), std::string(kTokenColumns) + " ORDER BY name"));
  std::vector<Token> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(token_from_row(s));
  if (rc != SQLITE_DONE) return impl_->error("list tokens");
  for (Token& t : out) SMIMEA_RETURN_IF_ERROR(read_scopes(&t));
  return out;
}

Status SqliteStore::remove_token(std::string_view name) {
  Statement s;
  SMIMEA_RETURN_IF_ERROR(s.prepare(impl_->db.get(), "DELETE FROM tokens WHERE name = ?1"));
  s.bind_text(1, name);
  if (s.step() != SQLITE_DONE) return impl_->error("remove token");
  if (sqlite3_changes(impl_->db.get()) == 0) return Status::not_found(name, "no such token");
  return Status();
}

Result<Token> SqliteStore::find_token(const std::array<std::uint8_t, 32>& secret_sha256) {
  // Every API request asks: prepared once, and reset at once, so that no read stays open.
  Statement& s = impl_->find_token;
  SMIMEA_RETURN_IF_ERROR(
      s.prepare(impl_->db.get(), std::string(kTokenColumns) + " WHERE secret_sha256 = ?1"));
  s.bind_blob(1, secret_sha256.data(), secret_sha256.size());
  const int rc = s.step();
  if (rc != SQLITE_ROW) {
    s.reset();
    if (rc == SQLITE_DONE) return Status::not_found("token", "unknown token");
    return impl_->error("find token");
  }
  Token t = token_from_row(s);
  s.reset();
  SMIMEA_RETURN_IF_ERROR(read_scopes(&t));
  return t;
}

}  // namespace smimea
