"""`vdata run`: the whole loop (generate -> audit -> debias -> eval before/after) as fingerprinted steps."""
