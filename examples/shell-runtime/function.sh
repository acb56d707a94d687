# Handler for the shell runtime (_HANDLER=function.handler). $1 is the event
# as JSON; what this function prints on stdout is the response.
handler() {
	event="${1:-null}"
	echo "hello-shell: handling request ${REQUEST_ID}" >&2
	printf '{"greeting":"Hello from a shell function on moat!","event":%s}\n' "$event"
}
