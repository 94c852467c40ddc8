// `harbormq passwd`: writes Mosquitto's password file format (what `mosquitto_passwd`
// writes, `auth.password_file` reads), PBKDF2-SHA512 hashes. Main thread only.
#pragma once

#include <CLI/CLI.hpp>

namespace harbor::app {

void add_passwd_command(CLI::App& app, int* exit_code);

}  // namespace harbor::app
