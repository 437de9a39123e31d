"""Sample-quality metrics: one module per metric or feature network, each pure functions.

* `feature_scores`: one pass of an image set through a feature network, and every score
  from its features (FID, KID, precision/recall, density/coverage, IS, class coverage).
* `frechet`: feature statistics and the Fréchet distance (FID-style scores).
* `kid`: the Kernel Inception Distance, as torch-fidelity computes it.
* `prdc`: precision, recall, density and coverage from k-nearest-neighbour balls.
* `inception_score`: the Inception Score from classifier probabilities.
* `class_coverage`: predicted-class histograms, covered-class counts and label accuracy.
* `inception`: the FID Inception-v3 (pytorch-fid's) in Flax, and finding its weights;
  `torch_file` reads their torch file without torch.
* `domain_classifier`: a classifier of a data set's own labels, trained once and cached,
  whose features score sets that Inception does not suit or has no weights for. Its
  parts: `classifier_net` (the network), `classifier_training`, `classifier_data` (the
  labelled set it trains on) and `classifier_store` (saving, loading, the cache);
  `mnist_classifier` is its MNIST case, `train_classifier` the command that trains one.
* `gaussian`: Gaussian fits and the closed-form 2-Wasserstein distance between Gaussians.
* `nearest_neighbour`: the L1 nearest-training-image memorisation check.
* `discriminator_accuracy`: a classifying D's test accuracy (the semi-supervised GAN).
"""
