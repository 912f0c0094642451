"""Emitters: Graph -> BuildPlan (file name -> content). Writing to disk is `plan.write_plan`."""
