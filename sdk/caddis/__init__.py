"""caddis: typed, versioned, memoized workflows for data and machine learning."""
