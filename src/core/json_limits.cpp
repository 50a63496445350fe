// SPDX-License-Identifier: MIT
#include "json_limits.hpp"

#include <string>

namespace modelrepo::detail {

Result<void> check_json_depth(std::string_view text)
{
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_json_depth)
                return make_error(Errc::bad_data, "$: JSON nested deeper than " +
                                                      std::to_string(max_json_depth) +
                                                      " levels at byte " + std::to_string(i));
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return success();
}

} // namespace modelrepo::detail
