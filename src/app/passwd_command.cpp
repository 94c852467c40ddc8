#include "app/passwd_command.hpp"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "broker/password_hash.hpp"

namespace harbor::app {
namespace {

// Mosquitto 2.0 writes 101 iterations, later versions 1000; each CONNECT of a user pays for
// one derivation on a shard thread (about 1 ms at 1000 here).
constexpr uint32_t kDefaultIterations = 1000;

struct PasswdArgs {
  std::string file;
  std::string user;
  std::optional<std::string> password;
  bool create = false;
  bool remove = false;
  uint32_t iterations = kDefaultIterations;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "harbormq passwd: %s\n", message.c_str());
  return 1;
}

// One line from the terminal without echo, or from standard input when it is not one.
std::optional<std::string> read_secret(const char* prompt) {
  const bool tty = isatty(STDIN_FILENO) == 1;
  termios saved{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt);
    std::fflush(stderr);
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  const bool ok = static_cast<bool>(std::getline(std::cin, line));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::fprintf(stderr, "\n");
  }
  if (!ok) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

int run_passwd(const PasswdArgs& a) {
  if (a.user.empty() || a.user.find(':') != std::string::npos) {
    return fail("a user name must not be empty or hold ':'");
  }
  std::vector<std::string> lines;
  if (!a.create) {
    std::ifstream in(a.file);
    if (!in)
      return fail("cannot read " + a.file + ": " + std::strerror(errno) + " (-c creates it)");
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  const std::string prefix = a.user + ":";
  bool found = false;
  std::vector<std::string> out;
  for (const auto& line : lines) {
    if (line.rfind(prefix, 0) == 0) {
      found = true;
      continue;  // replaced below, or removed
    }
    out.push_back(line);
  }
  if (a.remove) {
    if (!found) return fail("no user '" + a.user + "' in " + a.file);
  } else {
    std::optional<std::string> password = a.password;
    if (!password) {
      password = read_secret("Password: ");
      if (isatty(STDIN_FILENO) == 1) {
        auto again = read_secret("Reenter password: ");
        if (!again || *again != *password) return fail("the passwords do not match");
      }
    }
    if (!password) return fail("no password given");
    std::string secret = broker::hash_password(*password, a.iterations);
    if (secret.empty()) return fail("hashing failed (no random source?)");
    out.push_back(prefix + secret);
  }
  // Written next to the file, then renamed over it: a reader never sees half a file.
  const std::string tmp = a.file + ".tmp";
  {
    umask(077);
    std::ofstream f(tmp, std::ios::trunc);
    for (const auto& line : out) f << line << '\n';
    f.flush();
    if (!f) return fail("cannot write " + tmp + ": " + std::strerror(errno));
  }
  chmod(tmp.c_str(), 0600);
  if (std::rename(tmp.c_str(), a.file.c_str()) != 0) {
    std::remove(tmp.c_str());
    return fail("cannot replace " + a.file + ": " + std::strerror(errno));
  }
  return 0;
}

}  // namespace

void add_passwd_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<PasswdArgs>();
  auto* cmd = app.add_subcommand(
      "passwd",
      "Add, change (-b PASSWORD, or asked for) or delete (-D) a user in a Mosquitto-format "
      "password file (auth.password_file); PBKDF2-SHA512 hashes, as mosquitto_passwd writes");
  cmd->add_flag("-c,--create", args->create, "Create the file (or overwrite it)");
  cmd->add_flag("-D,--delete", args->remove, "Delete the user");
  cmd->add_option("-b,--batch", args->password,
                  "The password on the command line (visible to other users of the machine)");
  cmd->add_option("--iterations,-I", args->iterations, "PBKDF2 iterations (default 1000)")
      ->check(CLI::Range(1u, 10'000'000u));
  cmd->add_option("file", args->file, "The password file")->required();
  cmd->add_option("user", args->user, "The user name")->required();
  cmd->callback([args, exit_code] { *exit_code = run_passwd(*args); });
}

}  // namespace harbor::app
