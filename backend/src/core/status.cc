#include "smimea/status.h"

#include "smimea/types.h"

namespace smimea {

Status::Status(Code code, std::string_view what, std::string_view why)
    : rep_(std::make_unique<Rep>()) {
  rep_->code = code;
  rep_->message.reserve(what.size() + why.size() + 2);
  rep_->message.append(what);
  if (!what.empty() && !why.empty()) rep_->message.append(": ");
  rep_->message.append(why);
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return Status();
  return Status(rep_->code, context, rep_->message);
}

std::optional<RecordParams> make_record_params(int usage, int selector, int matching_type) {
  if (usage < 0 || usage > 3 || selector < 0 || selector > 1 || matching_type < 0 ||
      matching_type > 2) {
    return std::nullopt;
  }
  return RecordParams{static_cast<Usage>(usage), static_cast<Selector>(selector),
                      static_cast<MatchingType>(matching_type)};
}

}  // namespace smimea
