"""Analytics use cases: storing facts, answering KPIs, detecting crises, building reports."""
