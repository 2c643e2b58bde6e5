"""The zoo of .arch networks and the block library under blocks/."""
