package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

var logsCommand = &command{
	name:    "logs",
	group:   groupObserve,
	args:    "NAME [flags]",
	summary: "print a function's logs",
	help: `
Print what the function NAME wrote to stdout and stderr, framed by Lambda's
START, END and REPORT lines, oldest first. --follow keeps printing new
output until interrupted. --output json prints the stored records, one JSON
object per line: {"time","function","version","requestId","logStream","message"}.`,
	run: runLogs,
}

func runLogs(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	follow := c.fs.Bool("follow", false, "keep printing new output until interrupted")
	since := c.fs.String("since", "", "start at `time`: RFC 3339, or a duration ago such as 10m")
	pos, err := c.parseN(1, 1)
	if err != nil {
		return err
	}
	q, err := streamQuery(*since, *follow)
	if err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	resp, err := c.moatGet(ctx, cfg, "Logs", "/moat/v1/logs/"+url.PathEscape(pos[0]), q)
	if err != nil {
		return interrupted(ctx, *follow, err)
	}
	defer resp.Body.Close()
	return readLines(ctx, resp.Body, func(line []byte) error {
		if c.json() {
			_, err := fmt.Fprintf(c.stdout, "%s\n", line)
			return err
		}
		var rec struct {
			Message string `json:"message"`
		}
		msg := string(line) + "\n"
		if json.Unmarshal(line, &rec) == nil {
			msg = rec.Message
			if msg != "" && !strings.HasSuffix(msg, "\n") {
				msg += "\n"
			}
		}
		_, err := io.WriteString(c.stdout, msg)
		return err
	})
}

// streamQuery is the query of a stream read (logs, alerts): since, if
// given, and follow.
func streamQuery(since string, follow bool) (url.Values, error) {
	q := url.Values{}
	if since != "" {
		if err := checkSince(since); err != nil {
			return nil, err
		}
		q.Set("since", since)
	}
	if follow {
		q.Set("follow", "1")
	}
	return q, nil
}

// checkSince accepts what the logs endpoint accepts: an RFC 3339 time or a
// positive Go duration.
func checkSince(s string) error {
	if _, err := time.Parse(time.RFC3339, s); err == nil {
		return nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return nil
	}
	return usagef("--since %q is neither an RFC 3339 time nor a duration such as 10m", s)
}

var destinationCommand = &command{
	name:    "destination",
	group:   groupObserve,
	args:    "NAME [flags]",
	summary: "print the records delivered to a moat destination",
	help: `
Print the records that asynchronous invocations delivered to the queue
destination NAME, one JSON object per line. A queue destination is an SQS
ARN set with 'moat async-config --on-success/--on-failure'; moat keeps its
records itself, under the ARN's last part:

  moat async-config fn --on-failure arn:aws:sqs:us-east-1:000000000000:dlq
  moat destination dlq --follow

--follow keeps printing new records until interrupted.`,
	run: func(ctx context.Context, c *cmdCtx) error {
		c.clientFlags()
		follow := c.fs.Bool("follow", false, "keep printing new records until interrupted")
		pos, err := c.parseN(1, 1)
		if err != nil {
			return err
		}
		q := url.Values{}
		if *follow {
			q.Set("follow", "1")
		}
		cfg, err := c.config()
		if err != nil {
			return err
		}
		resp, err := c.moatGet(ctx, cfg, "Destination", "/moat/v1/destinations/"+url.PathEscape(pos[0]), q)
		if err != nil {
			return interrupted(ctx, *follow, err)
		}
		defer resp.Body.Close()
		return readLines(ctx, resp.Body, func(line []byte) error {
			_, err := fmt.Fprintf(c.stdout, "%s\n", line)
			return err
		})
	},
}

// interrupted drops err when following ended because the user interrupted:
// that is how a follow normally ends.
func interrupted(ctx context.Context, follow bool, err error) error {
	if follow && ctx.Err() != nil {
		return nil
	}
	return err
}

// readLines calls fn with each non-empty line of an NDJSON stream, without
// its newline. The end of the stream, or of ctx while following, ends it
// without error.
func readLines(ctx context.Context, r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimRight(line, "\r\n"); len(line) > 0 {
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) || ctx.Err() != nil:
			return nil
		default:
			return fmt.Errorf("read stream: %w", err)
		}
	}
}

var statusCommand = &command{
	name:    "status",
	group:   groupObserve,
	args:    "[flags]",
	summary: "show the node's status",
	help: `
Print the status of the moat node: uptime, region, dispatcher counters,
isolation in use. Nested fields print as dotted keys (a.b: value), sorted;
isolationMissing lists the walls instances lack, or says none.`,
	run: func(ctx context.Context, c *cmdCtx) error {
		c.clientFlags()
		c.outputFlag()
		if _, err := c.parseN(0, 0); err != nil {
			return err
		}
		cfg, err := c.config()
		if err != nil {
			return err
		}
		resp, err := c.moatGet(ctx, cfg, "Status", "/moat/v1/status", nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		if err != nil {
			return fmt.Errorf("read status: %w", err)
		}
		if c.json() {
			var buf bytes.Buffer
			if err := json.Indent(&buf, body, "", "  "); err != nil {
				return fmt.Errorf("status is not JSON: %w", err)
			}
			buf.WriteByte('\n')
			_, err = c.stdout.Write(buf.Bytes())
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("status is not JSON: %w", err)
		}
		if m, ok := v.(map[string]any); ok {
			noneIfEmpty(m, "isolationMissing")
		}
		var lines []string
		flatten("", v, &lines)
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		_, err = io.WriteString(c.stdout, b.String())
		return err
	},
}

// noneIfEmpty replaces m[key] with "none" when it is there but null or an
// empty object or list: for lists of what is missing, where nothing is
// good news that "{}" hides.
func noneIfEmpty(m map[string]any, key string) {
	v, ok := m[key]
	if !ok {
		return
	}
	switch v := v.(type) {
	case nil:
	case map[string]any:
		if len(v) > 0 {
			return
		}
	case []any:
		if len(v) > 0 {
			return
		}
	default:
		return
	}
	m[key] = "none"
}

// flatten renders a JSON value as "dotted.key: value" lines, keys sorted.
func flatten(prefix string, v any, out *[]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 && prefix != "" {
			*out = append(*out, prefix+": {}")
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			flatten(join(k), v[k], out)
		}
	case []any:
		if len(v) == 0 {
			*out = append(*out, prefix+": []")
		}
		for i, e := range v {
			flatten(join(strconv.Itoa(i)), e, out)
		}
	case nil:
		*out = append(*out, prefix+": null")
	default:
		*out = append(*out, fmt.Sprintf("%s: %v", prefix, v))
	}
}
