# Sourced by the Go build steps (tools/setup-pulumi.sh, tools/setup-toxiproxy.sh): how they compile.
# Measured on 2 cores, a cold build of two large Pulumi dependencies (github.com/pb33f/libopenapi,
# github.com/aws/aws-sdk-go-v2/service/s3), user + sys CPU seconds:
#   - GOGC=off with GOMEMLIMIT=1GiB (KDRILL_GO_GC, KDRILL_GO_MEMLIMIT): a compile collects garbage
#     only near 1 GiB, so most never do: 196 CPU-s against 212-215 at GOGC=400 and ~240 at Go's
#     default 100; peak 1.05 GB per compile (GOGC=off alone: 194 CPU-s but 1.7 GB). Two compiles
#     run at once (-p 2): set KDRILL_GO_MEMLIMIT=512MiB on a machine with less than 4 GB free.
#   - -gcflags=all=-dwarf=false: the compiler skips the debug info that the linker's -w drops
#     anyway (panics' stack traces come from the pclntab, not DWARF): 181-183 against 205 (-11 %).
# The whole Pulumi CLI under these: README, "first run".
GO_GCFLAGS="all=-dwarf=false"
GO_LDFLAGS="-s -w"
go_env() { env GOGC="${KDRILL_GO_GC:-off}" GOMEMLIMIT="${KDRILL_GO_MEMLIMIT:-1GiB}" "$@"; }
