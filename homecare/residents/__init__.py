"""The directory of residents: who lives where, and whom to call."""
