Write-Host "setup"
