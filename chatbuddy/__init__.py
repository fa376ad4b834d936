"""ChatBuddy: a real-time chat server for a web shop's assistant bot."""

__version__ = "0.1.0"
