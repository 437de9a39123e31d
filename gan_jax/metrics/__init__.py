"""Sample-quality metrics: one module per metric, each a set of pure functions.

* `frechet`: feature statistics and the Fréchet distance (FID-style scores).
* `inception_score`: the Inception Score from classifier probabilities.
* `class_coverage`: predicted-class histograms, covered-class counts and label accuracy.
* `gaussian`: Gaussian fits and the closed-form 2-Wasserstein distance between Gaussians.
* `nearest_neighbour`: the L1 nearest-training-image memorisation check.
* `discriminator_accuracy`: a classifying D's test accuracy (the semi-supervised GAN).
"""
