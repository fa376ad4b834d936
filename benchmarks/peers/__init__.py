"""Other stacks ChatBuddy is measured against, set up as the benchmark runs them."""
