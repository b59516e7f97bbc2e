"""`errortaxa explore`: a local web application over a study's errors, images and rules."""
