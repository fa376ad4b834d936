"""The client side of ChatBuddy: what the CLI, the tests and the benchmarks use to
start a server and talk to it."""
