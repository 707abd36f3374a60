"""Actions: confident live predictions turned into labels, milestones, comments or closing on GitHub."""
