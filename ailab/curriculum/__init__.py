"""Machine-readable catalogue of the 90-day curriculum: days, deep questions and 450 experiments."""

from ailab.curriculum.loader import Catalogue, CatalogueError, catalogue, load_catalogue
from ailab.curriculum.schema import Binding, Day, Experiment, Need

__all__ = ["Binding", "Catalogue", "CatalogueError", "Day", "Experiment", "Need", "catalogue", "load_catalogue"]
