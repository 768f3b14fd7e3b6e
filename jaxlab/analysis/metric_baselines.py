"""The references of scikit-learn's NCA example ("Dimensionality Reduction with Neighborhood
Components Analysis"), computed by its own procedure, and the same score for any embedding.

The procedure: `X, y = load_digits(return_X_y=True)`, `train_test_split(X, y,
test_size=0.5, stratify=y, random_state=0)`; each reducer is `make_pipeline(StandardScaler(),
R)` with R = `PCA(n_components=2, random_state=0)`, `LinearDiscriminantAnalysis(
n_components=2)` or `NeighborhoodComponentsAnalysis(n_components=2, random_state=0)`, fitted
on the train half; a `KNeighborsClassifier(n_neighbors=3)` is fitted on the reduced train
half and scored on the reduced test half. 'raw' is the same kNN on the 64 raw pixels.
`jaxlab.data.pk_sampler.nca_digits_examples` serves the same two halves in the same order.
"""

from __future__ import annotations

import numpy as np

NCA_NEIGHBORS = 3
NCA_SEED = 0


def nca_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train [898, 64], y_train, x_test [899, 64], y_test) of the NCA example."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.5, stratify=y, random_state=NCA_SEED
    )
    return x_train, y_train, x_test, y_test


def knn3_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> float:
    """The example's score: `KNeighborsClassifier(n_neighbors=3)` fitted on the train
    features, accuracy on the test features."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=NCA_NEIGHBORS).fit(train_x, train_y)
    return float(knn.score(test_x, test_y))


def nca_example_scores(n_components: int = 2) -> dict[str, float]:
    """{'raw', 'pca', 'lda', 'nca'}: kNN(3) test accuracies of the NCA example (see the
    module docstring); `n_components` is the reduced dimension (2 in the example; LDA
    allows at most 9)."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.neighbors import NeighborhoodComponentsAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train, x_test, y_test = nca_split()
    reducers = {
        "pca": PCA(n_components=n_components, random_state=NCA_SEED),
        "lda": LinearDiscriminantAnalysis(n_components=min(n_components, 9)),
        "nca": NeighborhoodComponentsAnalysis(n_components=n_components, random_state=NCA_SEED),
    }
    scores = {"raw": knn3_accuracy(x_train, y_train, x_test, y_test)}
    for name, reducer in reducers.items():
        model = make_pipeline(StandardScaler(), reducer).fit(x_train, y_train)
        scores[name] = knn3_accuracy(
            model.transform(x_train), y_train, model.transform(x_test), y_test
        )
    return scores
