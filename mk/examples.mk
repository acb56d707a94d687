# Example functions bundled into the moat binary for `moat up --examples`.
# Included from the top-level Makefile: build `examples` before building moat
# (`make up` does), and the binary embeds internal/cli/examples/*.zip.
# Needs only go. The variable EXAMPLE_ZIPS lists the zips, for use as a
# prerequisite of the moat binary.

# Leave the including Makefile's default goal alone.
examples_saved_goal := $(.DEFAULT_GOAL)

EXAMPLES_OUT  := internal/cli/examples
EXAMPLES_WORK := $(EXAMPLES_OUT)/.build
EXAMPLE_ZIPS := $(EXAMPLES_OUT)/echo-go.zip $(EXAMPLES_OUT)/shell-runtime.zip
GO ?= go

.PHONY: examples clean-examples

examples: $(EXAMPLE_ZIPS)

# A static linux binary named bootstrap, for the host's architecture: the
# node runs functions on this machine.
$(EXAMPLES_OUT)/echo-go.zip: examples/echo-go/main.go go.mod go.sum mk/pack.go
	rm -rf $(EXAMPLES_WORK)/echo-go && mkdir -p $(EXAMPLES_WORK)/echo-go
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -buildvcs=false -ldflags "-s -w" -tags lambda.norpc \
		-o $(EXAMPLES_WORK)/echo-go/bootstrap ./examples/echo-go
	$(GO) run mk/pack.go $(EXAMPLES_WORK)/echo-go $@

# The shell runtime as it is, with its modes made explicit.
$(EXAMPLES_OUT)/shell-runtime.zip: examples/shell-runtime/bootstrap examples/shell-runtime/function.sh mk/pack.go
	rm -rf $(EXAMPLES_WORK)/shell-runtime && mkdir -p $(EXAMPLES_WORK)/shell-runtime
	cp examples/shell-runtime/bootstrap examples/shell-runtime/function.sh $(EXAMPLES_WORK)/shell-runtime/
	chmod 0755 $(EXAMPLES_WORK)/shell-runtime/bootstrap && chmod 0644 $(EXAMPLES_WORK)/shell-runtime/function.sh
	$(GO) run mk/pack.go $(EXAMPLES_WORK)/shell-runtime $@

clean-examples:
	rm -rf $(EXAMPLE_ZIPS) $(EXAMPLES_WORK)

.DEFAULT_GOAL := $(examples_saved_goal)
