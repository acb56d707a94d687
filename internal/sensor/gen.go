package sensor

// Regenerate the BPF objects and their Go bindings (needs clang-19 and
// llvm-strip-19; see doc.go). The outputs are committed: go build and go
// test need no clang.
//
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -mcpu=v3 -Wall -Werror -std=gnu11" -target amd64,arm64 -type event_kind -type event_hdr -type exec_event -type exec_failed_event -type exit_event -type sys_event -type sys_event_path -type sys_event_path2 -type denied_event -go-package sensor sensor bpf/sensor.c -- -I./bpf
