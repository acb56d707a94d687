package cli

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

var aliasCommand = &command{
	name:    "alias",
	group:   groupFunctions,
	args:    "NAME create|update|get|rm|ls [ALIAS] [flags]",
	summary: "create, change, show, delete and list aliases",
	help: `
Manage the aliases of the function NAME: names that point at a version and,
with --weight, send a fraction of invocations to a second version.

  moat alias NAME create ALIAS --version V [--weight V2=0.1] [--description D]
  moat alias NAME update ALIAS [--version V] [--weight V2=0.1] [--description D]
  moat alias NAME get ALIAS
  moat alias NAME rm ALIAS
  moat alias NAME ls`,
	run: runAlias,
}

func runAlias(ctx context.Context, c *cmdCtx) error {
	c.clientFlags()
	c.outputFlag()
	version := c.fs.String("version", "", "the `version` the alias points at")
	description := c.fs.String("description", "", "`text` describing the alias")
	var weights weightFlag
	c.fs.Var(&weights, "weight", "send a fraction of invocations to another version: `VERSION=WEIGHT`, WEIGHT from 0 to 1")
	pos, err := c.parseN(2, 3)
	if err != nil {
		return err
	}
	name, op := pos[0], pos[1]
	var alias string
	switch op {
	case "create", "update", "get", "rm":
		if len(pos) != 3 {
			return usagef("alias %s needs ALIAS", op)
		}
		alias = pos[2]
	case "ls":
		if len(pos) != 2 {
			return usagef("alias ls takes no ALIAS")
		}
	default:
		return usagef("unknown alias operation %q: want create, update, get, rm or ls", op)
	}
	if op == "create" && *version == "" {
		return usagef("alias create needs --version")
	}
	if (op == "get" || op == "rm" || op == "ls") && (c.isSet("version") || c.isSet("weight") || c.isSet("description")) {
		return usagef("alias %s takes no --version, --weight or --description", op)
	}
	var routing *types.AliasRoutingConfiguration
	if weights.weights != nil {
		routing = &types.AliasRoutingConfiguration{AdditionalVersionWeights: weights.weights}
	}
	optional := func(flag string, v *string) *string {
		if c.isSet(flag) {
			return v
		}
		return nil
	}

	cfg, err := c.config()
	if err != nil {
		return err
	}
	cl := c.lambdaClient(cfg)
	switch op {
	case "create":
		out, err := cl.CreateAlias(ctx, &lambda.CreateAliasInput{
			FunctionName: &name, Name: &alias, FunctionVersion: version,
			Description: optional("description", description), RoutingConfig: routing,
		})
		if err != nil {
			return err
		}
		return c.printAlias(viewOf[aliasView](out))
	case "update":
		out, err := cl.UpdateAlias(ctx, &lambda.UpdateAliasInput{
			FunctionName: &name, Name: &alias, FunctionVersion: optional("version", version),
			Description: optional("description", description), RoutingConfig: routing,
		})
		if err != nil {
			return err
		}
		return c.printAlias(viewOf[aliasView](out))
	case "get":
		out, err := cl.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: &name, Name: &alias})
		if err != nil {
			return err
		}
		return c.printAlias(viewOf[aliasView](out))
	case "rm":
		if _, err := cl.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: &name, Name: &alias}); err != nil {
			return err
		}
		_, err := fmt.Fprintf(c.stdout, "deleted alias %s:%s\n", name, alias)
		return err
	}

	var aliases []aliasView
	p := lambda.NewListAliasesPaginator(cl, &lambda.ListAliasesInput{FunctionName: &name})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, a := range page.Aliases {
			aliases = append(aliases, viewOf[aliasView](a))
		}
	}
	if c.json() {
		if aliases == nil {
			aliases = []aliasView{}
		}
		return printJSON(c.stdout, map[string]any{"Aliases": aliases})
	}
	t := newTable(c.stdout, "ALIAS", "VERSION", "WEIGHTS", "DESCRIPTION")
	for _, a := range aliases {
		t.row(a.Name, a.FunctionVersion, formatWeights(a.RoutingConfig), orDash(a.Description))
	}
	return t.flush()
}

func (c *cmdCtx) printAlias(a aliasView) error {
	if c.json() {
		return printJSON(c.stdout, a)
	}
	line := a.Name + " -> " + a.FunctionVersion
	if w := formatWeights(a.RoutingConfig); w != "-" {
		line += " (" + w + ")"
	}
	_, err := fmt.Fprintln(c.stdout, line)
	return err
}

// formatWeights renders additional version weights as "2=10%, 3=5%".
func formatWeights(rc *routingConfig) string {
	if rc == nil || len(rc.AdditionalVersionWeights) == 0 {
		return "-"
	}
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(rc.AdditionalVersionWeights)) {
		pct := strconv.FormatFloat(math.Round(rc.AdditionalVersionWeights[v]*10000)/100, 'f', -1, 64)
		parts = append(parts, v+"="+pct+"%")
	}
	return strings.Join(parts, ", ")
}
