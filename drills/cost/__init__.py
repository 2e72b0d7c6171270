"""Per-drill cost: a dated price catalog, the cost model, FOCUS 1.2 export, Cost Explorer
reconciliation, price refresh from the AWS Price List API, and the budget guard."""

from drills.cost.catalog import Catalog, CatalogError, Price
from drills.cost.drill import BudgetExceeded, CostHooks, evidence, guard, summary_lines

__all__ = [
    "BudgetExceeded",
    "Catalog",
    "CatalogError",
    "CostHooks",
    "Price",
    "evidence",
    "guard",
    "summary_lines",
]
