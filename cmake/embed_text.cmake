# Writes a C++ header holding the text of IN as `inline constexpr const char NAME[]`.
file(READ ${IN} text)
file(WRITE ${OUT}.tmp "// Generated from ${IN} by cmake/embed_text.cmake. Do not edit.
#pragma once
inline constexpr const char ${NAME}[] = R\"smimea_text(${text})smimea_text\";
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
