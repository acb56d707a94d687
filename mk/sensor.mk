# The runtime sensor's BPF objects (internal/sensor).
# Included from the top-level Makefile (`-include mk/sensor.mk`), or run on
# its own: make -f mk/sensor.mk generate-sensor
#
#   make generate-sensor   recompile internal/sensor/bpf/*.c with the pinned
#                          bpf2go (go.mod tool directive) and rewrite the
#                          committed sensor_{x86,arm64}_bpfel.{go,o}
#   make check-sensor      regenerate and fail if that changed anything
#                          (the committed objects must match the sources)
#
# Only these targets need clang: go build and go test use the committed
# objects. The flags live in internal/sensor/gen.go (the go:generate line):
# clang-19 and llvm-strip-19, -O2 -mcpu=v3, targets amd64 and arm64.
# Debian: apt-get install clang-19 llvm-19

# Leave the including Makefile's default goal alone.
sensor_saved_goal := $(.DEFAULT_GOAL)

GO ?= go
SENSOR_DIR := internal/sensor
SENSOR_GENERATED := $(addprefix $(SENSOR_DIR)/sensor_,x86_bpfel.go x86_bpfel.o arm64_bpfel.go arm64_bpfel.o)

.PHONY: generate-sensor check-sensor

generate-sensor:
	@command -v clang-19 >/dev/null && command -v llvm-strip-19 >/dev/null || \
		{ echo "generate-sensor needs clang-19 and llvm-strip-19 (apt-get install clang-19 llvm-19)"; exit 1; }
	$(GO) generate ./$(SENSOR_DIR)/

check-sensor: generate-sensor
	@git diff --exit-code --stat -- $(SENSOR_GENERATED) || \
		{ echo "the committed sensor objects do not match internal/sensor/bpf: commit the regenerated files"; exit 1; }

.DEFAULT_GOAL := $(sensor_saved_goal)
