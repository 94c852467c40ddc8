// Process exit codes of the client tools; scripts rely on them (docs/benchmark.md).
#pragma once

namespace harbor::tools {

enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,           // invalid option value or combination
  kExitConnectFailed = 2,   // TCP connect failed (refused, unreachable, DNS)
  kExitConnackRefused = 3,  // the broker answered CONNACK with an error reason
  kExitTimeout = 4,         // connect/CONNACK/SUBACK/ack or -W wait timed out
  kExitProtocol = 5,        // malformed data from the broker or connection lost
  kExitRejected = 6,        // SUBACK failure or PUBACK/PUBREC error reason
  kExitIo = 7,              // local file / stdin error
};

}  // namespace harbor::tools
